"""The packages of the layout (docs/architecture.md). Which way imports point is
checked by import-linter's contracts in setup.cfg (``lint-imports`` in scripts/check);
these tests check that the contracts cover every package and still bite."""

import configparser
import os
import shutil
import subprocess
from pathlib import Path

from fixtures.common import REPO

PACKAGES = ("edge_agent", "hub_sync", "firmware", "provisioning", "classroom_ui")


def _linter_config() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    return cfg


def test_every_package_of_the_layout_is_there():
    for name in (*PACKAGES, "tests"):
        assert (REPO / name).is_dir(), name
    for name in PACKAGES:
        assert (REPO / name / "__init__.py").is_file(), name
    for sub in ("core", "formats", "client", "hub"):
        assert (REPO / "hub_sync" / sub / "__init__.py").is_file(), sub
    for sub in ("library", "sync", "spaces", "pages", "demo"):
        assert (REPO / "edge_agent" / sub / "__init__.py").is_file(), sub


def test_the_import_contracts_cover_every_package_and_list_no_exceptions():
    cfg = _linter_config()
    roots = cfg["importlinter"]["root_packages"].split()
    assert sorted(roots) == sorted(PACKAGES)
    contracts = [s for s in cfg.sections() if s.startswith("importlinter:contract:")]
    assert {cfg[c]["type"] for c in contracts} >= {"layers", "forbidden", "acyclic_siblings"}
    for c in contracts:
        assert "ignore_imports" not in cfg[c], f"{c} lists exceptions"
    layered = " ".join(cfg[c].get("layers", "") for c in contracts)
    for top_level in (p for p in (REPO / "edge_agent").iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()):
        name = top_level.stem if top_level.suffix == ".py" else top_level.name
        if name != "__init__":
            assert f"edge_agent.{name}" in layered.split(), f"edge_agent.{name} is in no layer"


def _python_only(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or not (n.endswith(".py") or Path(folder, n).is_dir())]


def test_a_wrong_import_breaks_a_contract(tmp_path):
    """The contracts bite: a library module that imports the pages is refused.

    Checked on a copy of the packages' sources (first on the path), so the wrong module never
    appears in the working tree where parallel tests and other checks read the sources."""
    for package in _linter_config()["importlinter"]["root_packages"].split():
        shutil.copytree(REPO / package, tmp_path / package, ignore=_python_only)
    shutil.copy(REPO / "setup.cfg", tmp_path / "setup.cfg")
    (tmp_path / "edge_agent" / "library" / "zz_wrong_way.py").write_text(
        "from edge_agent.pages import register  # noqa: F401\n", "utf-8")
    out = subprocess.run(["lint-imports", "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode != 0
    assert "edge_agent.library.zz_wrong_way" in out.stdout


def test_one_version_for_the_installed_software():
    import firmware
    import edge_agent
    from importlib.metadata import version

    assert edge_agent.__version__ == firmware.__version__ == version("school-edge")
