"""Language of the pages: zh_CN by default, English on request, per user.

The choice is kept in a ``lang`` cookie (a tablet is often shared by turns, so it
is also set again at each login by the student pages). Message catalogues are
``classroom_ui/translations/<lang>/LC_MESSAGES/messages.po``; the binary ``.mo``
files Babel reads are compiled from them at start-up into the data folder, so a
fresh clone works and a stale ``.mo`` can never hide an edited ``.po``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Blueprint, Flask, current_app, redirect, request
from flask_babel import Babel, get_locale

import classroom_ui
from hub_sync.core.atomic_file import atomic_open

LANGUAGES = ("zh_CN", "en")
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600
UI_DIR = Path(classroom_ui.__file__).resolve().parent
PO_DIR = UI_DIR / "translations"

bp = Blueprint("i18n", __name__)


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


def select_locale() -> str:
    """The user's language: ?lang=, then the cookie, then the site default."""
    for candidate in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    default = current_app.extensions["edge_config"].default_language
    return default if default in LANGUAGES else "zh_CN"


def html_lang() -> str:
    """The value for ``<html lang>``: zh-CN or en."""
    return "en" if get_locale().language == "en" else "zh-CN"


def init_app(app: Flask) -> None:
    appliance = app.extensions["appliance"]
    mo_dir = compile_catalogues(Path(appliance.data_dir) / "cache" / "translations")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(mo_dir)
    app.config["BABEL_DEFAULT_LOCALE"] = "zh_CN"
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["html_lang"] = html_lang
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.register_blueprint(bp)


def safe_next(target: str | None) -> str:
    """A same-site path to go back to, else ``/`` (no open redirect).

    Only a plain absolute path is kept. Browsers read a backslash as a slash and
    drop tabs and newlines inside URLs, so ``/\\evil``, ``/\t/evil`` and ``//evil``
    all lead off the appliance; the same written with %-escapes (``/%5Cevil``,
    ``/%2F%2Fevil``, twice escaped ...) may be decoded on the way by a proxy or a
    script. Each decoding of ``target`` must pass, so none of them gets through."""
    if not target:
        return "/"
    text = target
    for _ in range(4):  # %-decoded until it no longer changes (at most 3 layers of escaping)
        if not _plain_path(text):
            return "/"
        decoded = unquote(text)
        if decoded == text:
            return target
        text = decoded
    return "/"


def _plain_path(text: str) -> bool:
    if not text.startswith("/") or text[1:2] in ("/", "\\"):
        return False
    if "\\" in text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc


@bp.get("/lang/<code>")
def choose(code: str):
    """Switch language and go back where the user was."""
    rv = redirect(safe_next(request.args.get("next")))
    if code in LANGUAGES:
        rv.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_MAX_AGE_S, samesite="Lax", httponly=True)
    return rv


def extract_messages() -> dict[str, list[str]]:
    """Every translatable msgid in the page templates and views -> where it is used.

    Used by ``scripts/translations.py`` (to update the ``.po``) and by the test that
    no string is left untranslated.
    """
    from babel.messages.extract import extract
    from jinja2.ext import babel_extract

    found: dict[str, list[str]] = {}
    sources = [(p, babel_extract) for p in sorted((UI_DIR / "templates").rglob("*.html"))]
    sources += [(p, "python") for p in sorted(Path(__file__).parent.glob("*.py"))]
    for path, method in sources:
        with path.open("rb") as f:
            for lineno, message, _comments, _context in extract(method, f, keywords={"_": None, "gettext": None, "lazy_gettext": None, "_l": None, "ngettext": (1, 2)}, options={"extensions": "jinja2.ext.i18n"} if method is babel_extract else None):
                for msgid in (message if isinstance(message, tuple) else (message,)):
                    if msgid:
                        found.setdefault(msgid, []).append(f"{path.name}:{lineno}")
    return found
