"""The README documents every setting and every command (datasette's habit)."""

import re
import subprocess
import sys

import click
import pytest
from conftest import REPO

from edge_agent.cli import edge, main
from edge_agent.config import settings_table

README = (REPO / "README.md").read_text("utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def visible(group: click.Group) -> list[str]:
    return sorted(name for name, cmd in group.commands.items() if not cmd.hidden)


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


@pytest.mark.parametrize("command", [f"school-edge {name}" for name in visible(main)]
                         + [f"school-edge edge {name}" for name in visible(edge)])
def test_every_command_is_in_the_readme_command_line_section(command):
    assert re.search(rf"{re.escape(command)}(\s|`|$)", section("Command line"), re.M), \
        f"`{command}` is missing from the README's Command line section"
