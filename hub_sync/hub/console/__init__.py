"""The county console: the hub's web pages for the county education bureau.

``init_app(app)`` is called by ``hub_sync.hub.app.create_hub_app``; it sets up the
console's secret (``keys/console.key`` in the hub's data folder), Flask-WTF's CSRF
check (on the console's forms only: the devices' signed APIs are not forms),
Flask-Babel (zh-CN by default, English by choice; domain ``county``), the shared
static assets, and registers each page area's blueprint here, explicitly.

Templates live in ``classroom_ui/templates/county/`` and extend
``county/base.html``; their msgids (Chinese) are translated in
``classroom_ui/translations/en/LC_MESSAGES/county.po`` (``python3
scripts/translations.py`` updates it). A page area is a module with a blueprint
whose views call ``auth.require_role(...)`` (and ``auth.school_scope()`` for
what a ``school_head`` may see); see ``docs/county-console.md``.
"""

from __future__ import annotations

from flask import Flask

from hub_sync.hub.console import assets, audit_trail, auth, home, locale, preview, review, staff
from hub_sync.hub.console import fleet, reports

__all__ = ["init_app", "BLUEPRINTS"]

# Every page area of the console, registered by ``init_app`` in this order.
BLUEPRINTS = (assets.bp, locale.bp, auth.bp, home.bp, staff.bp, review.bp, preview.bp, audit_trail.bp,
              fleet.bp, reports.bp)


def init_app(app: Flask) -> None:
    """Give the hub's app its console pages (see the module docstring)."""
    auth.init_app(app)
    locale.init_app(app)
    assets.init_app(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
