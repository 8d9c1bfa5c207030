"""The message catalogues of the pages: where they are, compiling them, finding msgids.

Two domains, both with Chinese msgids and English in ``translations/en/LC_MESSAGES``:
``messages`` (the appliance's classroom pages) and ``county`` (the county hub's
console, templates under ``templates/county/``). The binary ``.mo`` files Babel
reads are compiled from the ``.po`` files at start-up into the server's data
folder, so a fresh clone works and a stale ``.mo`` can never hide an edited ``.po``.
Presentation only: nothing here knows the appliance or the hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from hub_sync.core.atomic_file import atomic_open

__all__ = ["UI_DIR", "PO_DIR", "TEMPLATES_DIR", "COUNTY_DIR", "compile_catalogues", "extract"]

UI_DIR = Path(__file__).resolve().parent
PO_DIR = UI_DIR / "translations"
TEMPLATES_DIR = UI_DIR / "templates"
COUNTY_DIR = TEMPLATES_DIR / "county"  # the county console's templates (domain "county")
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "_l": None, "ngettext": (1, 2)}


def compile_catalogues(dest: Path, source: Path = PO_DIR) -> Path:
    """Compile every ``.po`` under ``source`` to ``.mo`` under ``dest`` if missing or stale."""
    for po in source.glob("*/LC_MESSAGES/*.po"):
        mo = dest / po.relative_to(source).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.parts[-3])
        with atomic_open(mo) as out:  # another worker never reads half a file
            write_mo(out, catalog)
    return dest


def extract(templates: Iterable[Path], modules: Iterable[Path]) -> dict[str, list[str]]:
    """Every translatable msgid in these templates and Python modules -> where it is used."""
    from babel.messages.extract import extract as babel_extract_file
    from jinja2.ext import babel_extract

    found: dict[str, list[str]] = {}
    sources = [(p, babel_extract) for p in sorted(templates)] + [(p, "python") for p in sorted(modules)]
    for path, method in sources:
        with path.open("rb") as f:
            options = {"extensions": "jinja2.ext.i18n"} if method is babel_extract else None
            for lineno, message, _comments, _context in babel_extract_file(method, f, keywords=KEYWORDS, options=options):
                for msgid in (message if isinstance(message, tuple) else (message,)):
                    if msgid:
                        found.setdefault(msgid, []).append(f"{path.name}:{lineno}")
    return found
