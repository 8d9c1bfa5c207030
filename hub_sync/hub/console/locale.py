"""The console's language: zh_CN by default, English on request (a ``lang`` cookie).

Catalogues are compiled at start-up from ``classroom_ui/translations`` into the
hub's ``cache/translations``; the console's domain is ``county``.
"""

from __future__ import annotations

import time
from pathlib import Path

from flask import Blueprint, Flask, redirect, request
from flask_babel import Babel, get_locale

from classroom_ui.catalogues import COUNTY_DIR, compile_catalogues, extract
from hub_sync.core.redirect_target import safe_next

__all__ = ["LANGUAGES", "init_app", "pick", "extract_messages", "html_lang"]

LANGUAGES = ("zh_CN", "en")
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600
DOMAIN = "county"

bp = Blueprint("console_locale", __name__)


def select_locale() -> str:
    """The reader's language: ?lang=, then the cookie, then Chinese."""
    for candidate in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return "zh_CN"


def html_lang() -> str:
    """The value for ``<html lang>``: zh-CN or en."""
    return "en" if get_locale().language == "en" else "zh-CN"


def pick(zh: str, en: str) -> str:
    """The one of two messages (a ``Problem``'s) in the reader's language."""
    return en if get_locale().language == "en" else zh


def when(ts: float | None) -> str:
    """A time as the county's staff read it (the hub's local time, to the minute)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def init_app(app: Flask) -> None:
    hub = app.extensions["hub"]
    mo_dir = compile_catalogues(Path(hub.data_dir).resolve() / "cache" / "translations")
    Babel(app, locale_selector=select_locale, default_locale="zh_CN", default_domain=DOMAIN,
          default_translation_directories=str(mo_dir))
    app.jinja_env.globals["html_lang"] = html_lang
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.filters["when"] = when


@bp.get("/console/lang/<code>")
def choose(code: str):
    """Switch language and go back where the reader was."""
    rv = redirect(safe_next(request.args.get("next"), "/console/"))
    if code in LANGUAGES:
        rv.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_MAX_AGE_S, samesite="Lax", httponly=True)
    return rv


def extract_messages() -> dict[str, list[str]]:
    """Every msgid of the console (templates under ``county/`` and these modules) -> where used."""
    return extract(COUNTY_DIR.rglob("*.html"), Path(__file__).parent.glob("*.py"))
