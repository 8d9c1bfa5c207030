"""Update the English page catalogues from the templates and views.

    python3 scripts/translations.py          # add new msgids (empty), drop unused, list the untranslated

Keeps existing translations. Chinese is the source language (msgids), so only
``classroom_ui/translations/en/LC_MESSAGES/messages.po`` (the classroom pages) and
``county.po`` (the county hub's console, templates under ``county/``) need translating.
"""

from __future__ import annotations

import sys

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from edge_agent.pages.i18n import PO_DIR, extract_messages
from hub_sync.hub.console.locale import extract_messages as extract_county_messages



def main() -> int:
    missing = update("messages", extract_messages(), "school-edge classroom pages")
    missing += update("county", extract_county_messages(), "school-edge county console")
    return 1 if missing else 0


def update(domain: str, used: dict[str, list[str]], project: str) -> list[str]:
    """Rewrite one domain's English catalogue from the msgids in use; return the untranslated ones."""
    po_path = PO_DIR / "en" / "LC_MESSAGES" / f"{domain}.po"
    old = Catalog(locale="en")
    if po_path.exists():
        with po_path.open("rb") as f:
            old = read_po(f, locale="en")
    new = Catalog(locale="en", project=project, fuzzy=False)
    for msgid, places in sorted(used.items()):
        prev = old.get(msgid)
        new.add(msgid, prev.string if prev else "", locations=[(p.split(":")[0], int(p.split(":")[1])) for p in places])
    # data values shown through the `label` filter (subjects, grades, editions) are kept as they are
    for message in old:
        if message.id and message.id not in new and "keep" in (message.user_comments or []):
            new.add(message.id, message.string, user_comments=["keep"])
    po_path.parent.mkdir(parents=True, exist_ok=True)
    with po_path.open("wb") as f:
        write_po(f, new, width=0, omit_header=False, sort_output=True)
    missing = [m.id for m in new if m.id and not m.string]
    for m in missing:
        print(f"untranslated ({domain}):", m)
    return missing


if __name__ == "__main__":
    sys.exit(main())
