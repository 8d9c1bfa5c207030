"""Language of the pages: zh_CN by default, English on request, per user.

The choice is kept in a ``lang`` cookie (a tablet is often shared by turns, so it
is also set again at each login by the student pages). Message catalogues are
``classroom_ui/translations/<lang>/LC_MESSAGES/messages.po``; the binary ``.mo``
files Babel reads are compiled from them at start-up into the data folder, so a
fresh clone works and a stale ``.mo`` can never hide an edited ``.po``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, current_app, redirect, request
from flask_babel import Babel, get_locale

from classroom_ui.catalogues import COUNTY_DIR, PO_DIR, TEMPLATES_DIR, UI_DIR, compile_catalogues, extract
from hub_sync.core.redirect_target import safe_next

__all__ = ["safe_next", "compile_catalogues", "extract_messages", "init_app", "html_lang", "UI_DIR", "PO_DIR"]

LANGUAGES = ("zh_CN", "en")
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600

bp = Blueprint("i18n", __name__)


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


@bp.get("/lang/<code>")
def choose(code: str):
    """Switch language and go back where the user was."""
    rv = redirect(safe_next(request.args.get("next")))
    if code in LANGUAGES:
        rv.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_MAX_AGE_S, samesite="Lax", httponly=True)
    return rv


def extract_messages() -> dict[str, list[str]]:
    """Every translatable msgid in the classroom page templates and views -> where it is used.

    Used by ``scripts/translations.py`` (to update the ``.po``) and by the test that
    no string is left untranslated. The county console's templates (``county/``) are
    another domain, extracted by ``hub_sync.hub.console``.
    """
    templates = [p for p in TEMPLATES_DIR.rglob("*.html") if COUNTY_DIR not in p.parents]
    return extract(templates, Path(__file__).parent.glob("*.py"))
