"""The county console's language: every string of its templates and views has English in
its own catalogue (domain ``county``; the classroom pages' is ``tests/test_pages_i18n.py``'s)."""

from babel.messages.pofile import read_po

from classroom_ui.catalogues import PO_DIR
from hub_sync.hub.console.locale import extract_messages


def test_every_console_string_has_an_english_translation():
    with (PO_DIR / "en" / "LC_MESSAGES" / "county.po").open("rb") as f:
        catalogue = read_po(f, locale="en")
    used = extract_messages()
    assert len(used) > 40
    missing = [f"{msgid} ({places[0]})" for msgid, places in used.items()
               if catalogue.get(msgid) is None or not catalogue.get(msgid).string.strip()]
    assert missing == []

