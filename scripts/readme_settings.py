#!/usr/bin/env python3
"""Write the appliance's settings table into README.md between the markers.

    python3 scripts/readme_settings.py          # rewrite the block
    python3 scripts/readme_settings.py --check  # exit 1 if the README is stale

The table comes from ``edge_agent.config.settings_table()``, the one place
settings are declared; ``tests/test_docs.py`` runs ``--check``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from edge_agent.config import settings_table

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(<!-- settings-table[^>]*-->\n)(.*?)(<!-- /settings-table -->)", re.S)


def _default(value: object) -> str:
    if isinstance(value, bool):
        return f"`{json.dumps(value)}`"
    if value == "":
        return "(empty)"
    return f"`{value}`"


def render() -> str:
    """The markdown table of every setting: name, default, help."""
    rows = ["| setting | default | 说明 / help |", "| --- | --- | --- |"]
    for name, default, help_text in settings_table():
        rows.append(f"| `{name}` | {_default(default)} | {help_text.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


def rewrite(text: str) -> str:
    """``text`` (a README) with the settings block replaced by a fresh table."""
    if not BLOCK.search(text):
        raise SystemExit("README.md has no <!-- settings-table --> ... <!-- /settings-table --> markers")
    return BLOCK.sub(lambda m: m.group(1) + render() + m.group(3), text, count=1)


def main(argv: list[str]) -> int:
    text = README.read_text("utf-8")
    fresh = rewrite(text)
    if "--check" in argv:
        if fresh != text:
            print("README.md settings table is stale: run python3 scripts/readme_settings.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
