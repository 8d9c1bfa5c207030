"""The docs are generated where they can be and every link in them resolves (datasette's habit).

- docs/cli.md is the ``--help`` of every command (scripts/cli_reference.py), so a new
  command or option fails here until the page is regenerated;
- docs/settings.md is the settings table of edge_agent.config (scripts/settings_reference.py);
- every relative link and ``#anchor`` in README.md, docs/*.md and bench/README.md resolves;
- the README stays a front page.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

from edge_agent.config import settings_table
from fixtures.common import REPO

README_LIMIT_CHARS = 9_000


def load_script(name: str):
    """A module of scripts/ (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli_reference = load_script("cli_reference")
COMMANDS = [path for path, _ in cli_reference.commands()]


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "README.md"]


# --- generated pages ---------------------------------------------------------------------------

def test_settings_page_is_generated_from_the_code():
    result = subprocess.run([sys.executable, "scripts/settings_reference.py", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name, default, help_text", settings_table())
def test_every_setting_is_in_the_settings_page(name, default, help_text):
    table = (REPO / "docs" / "settings.md").read_text("utf-8")
    row = next((line for line in table.splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"setting {name} is not documented in docs/settings.md"
    assert help_text.replace("|", "/") in row


def test_cli_reference_is_generated_from_the_current_commands():
    on_disk = (REPO / "docs" / "cli.md").read_text("utf-8")
    assert on_disk == cli_reference.render(), "docs/cli.md is stale: run python3 scripts/cli_reference.py"


def test_cli_reference_check_mode_agrees():
    result = subprocess.run([sys.executable, "scripts/cli_reference.py", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_verbs_of_the_design_are_commands():
    top = {path.split()[1] for path in COMMANDS if path.count(" ") == 1}
    assert {"demo", "edge", "hub", "provision"} <= top
    expected = {"edge serve", "edge status", "edge sync", "edge import-usb", "edge export-usb",
                "hub init", "hub serve", "hub add-resource", "hub publish", "hub enroll", "hub import-usb",
                "provision make", "provision apply"}
    if "firmware" in top:
        expected |= {"firmware build", "firmware install", "firmware status", "firmware rollback"}
    assert {f"school-edge {verb}" for verb in expected} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_its_section_in_the_cli_reference(command):
    page = (REPO / "docs" / "cli.md").read_text("utf-8")
    assert re.search(rf"^## {re.escape(command)}\n\n```text\nUsage: {re.escape(command)}[ \n]", page, re.M), \
        f"`{command}` has no help section in docs/cli.md: run python3 scripts/cli_reference.py"


def test_the_cli_reference_does_not_depend_on_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    assert cli_reference.render() == (REPO / "docs" / "cli.md").read_text("utf-8")


# --- links and anchors -------------------------------------------------------------------------

_MD = MarkdownIt("commonmark").enable("table")
_HTML_ANCHOR = re.compile(r"""<a\s[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
_HTML_LINK = re.compile(r"""<(?:a|img)\s[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading (github-slugger): lowercase, punctuation and symbols
    dropped except ``-`` and ``_``, each space a ``-``; letters of every script (Chinese) kept."""
    kept = [ch for ch in text.lower() if ch in "-_ " or unicodedata.category(ch)[0] in "LNM"]
    return "".join(kept).replace(" ", "-")


def _plain(inline) -> str:
    """The rendered text of an inline token (what GitHub slugs): text and code, no markup."""
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts).strip()


def anchors(path: Path) -> set[str]:
    """Every anchor a link into ``path`` may use: heading slugs (with GitHub's -1, -2 for
    repeats) and explicit ``<a id=...>`` / ``<a name=...>``."""
    text = path.read_text("utf-8")
    found: set[str] = set(_HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    tokens = _MD.parse(text)
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        slug = github_slug(_plain(tokens[i + 1]))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> list[str]:
    """Every link and image target in ``path`` (markdown and inline HTML; code is not a link)."""
    found = []
    for token in _MD.parse(path.read_text("utf-8")):
        if token.type == "html_block":
            found += _HTML_LINK.findall(token.content)
        for child in token.children or []:
            if child.type == "link_open":
                found.append(child.attrs["href"])
            elif child.type == "image":
                found.append(child.attrs["src"])
            elif child.type == "html_inline":
                found += _HTML_LINK.findall(child.content)
    return found


def broken_links(path: Path, root: Path) -> list[str]:
    """The links of ``path`` that do not resolve inside ``root``: a missing file, a file outside
    the repository, or an anchor that no heading (or explicit anchor) of the target defines."""
    broken = []
    for target in links(path):
        parts = urlsplit(target)
        if parts.scheme or target.startswith("//"):
            continue  # external: not ours to check offline
        if target.startswith("/"):
            broken.append(f"{target}: use a path relative to {path.name}")
            continue
        dest = (path.parent / unquote(parts.path)).resolve() if parts.path else path.resolve()
        if not dest.is_relative_to(root.resolve()):
            broken.append(f"{target}: outside the repository")
        elif not dest.exists():
            broken.append(f"{target}: no such file")
        elif parts.fragment:
            if dest.suffix != ".md":
                broken.append(f"{target}: an anchor into a file that is not markdown")
            elif unquote(parts.fragment) not in anchors(dest):
                broken.append(f"{target}: no heading or anchor '{unquote(parts.fragment)}' in {dest.name}")
    return broken


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_and_anchor_resolves(path):
    assert path.is_file()
    assert broken_links(path, REPO) == []


def test_the_link_checker_finds_broken_links(tmp_path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (tmp_path / "outside.md").write_text("# Outside\n", "utf-8")
    (repo / "docs" / "guide.md").write_text(
        "# 技术员指南 Technician guide\n\n## Technician's guide (USB)\n\n**Bold, not a heading**\n\n"
        '<a id="kept-anchor"></a>\n\n## Twice\n\n## Twice\n', "utf-8")
    (repo / "README.md").write_text(
        "[ok](docs/guide.md) [ok](docs/guide.md#技术员指南-technician-guide) "
        "[ok](docs/guide.md#technicians-guide-usb) [ok](docs/guide.md#kept-anchor) "
        "[ok](docs/guide.md#twice-1) [ok](https://example.org/x#y) [ok](#own-heading)\n\n"
        "`[code, not a link](nowhere.md)`\n\n## Own heading\n\n"
        "[missing](docs/missing.md) [bold](docs/guide.md#bold-not-a-heading) [gone](#no-such-heading) "
        "[escape](../outside.md) [absolute](/docs/guide.md) ![picture](docs/none.png)\n", "utf-8")
    broken = broken_links(repo / "README.md", repo)
    assert [entry.split(":")[0] for entry in broken] == [
        "docs/missing.md", "docs/guide.md#bold-not-a-heading", "#no-such-heading", "../outside.md",
        "/docs/guide.md", "docs/none.png"]


@pytest.mark.parametrize("heading, slug", [
    ("技术员指南 Technician guide", "技术员指南-technician-guide"),
    ("Technician's guide (USB)", "technicians-guide-usb"),
    ("school-edge hub add-resource", "school-edge-hub-add-resource"),
    ("拒绝一览 Refusals", "拒绝一览-refusals"),
    ("A & B", "a--b"),
    ("snake_case stays", "snake_case-stays"),
    ("花名册（CSV）：格式", "花名册csv格式"),
])
def test_anchors_are_computed_the_github_way(heading, slug):
    assert github_slug(heading) == slug


# --- the front page ----------------------------------------------------------------------------

def test_the_readme_stays_a_front_page():
    text = (REPO / "README.md").read_text("utf-8")
    assert len(text) < README_LIMIT_CHARS, f"README.md has {len(text)} characters; move guides into docs/"


def test_the_readme_gives_the_two_commands_on_its_first_screen():
    first_screen = "\n".join((REPO / "README.md").read_text("utf-8").splitlines()[:30])
    assert "bash scripts/install.sh && school-edge demo" in first_screen
    assert "bash scripts/install.sh && bash scripts/check" in first_screen


def test_the_readme_links_every_page_of_the_docs():
    targets = {urlsplit(link).path for link in links(REPO / "README.md")}
    pages = {p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")} | {"bench/README.md"}
    assert pages - targets == set()
