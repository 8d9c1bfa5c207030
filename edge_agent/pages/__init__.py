"""The classroom pages: HTML views over the appliance's library functions and JSON APIs.

``register(app)`` is called by ``edge_agent.app.create_app``. Templates, static
assets and translations live in ``classroom_ui`` (presentation only); the views
here fetch data through the catalogue, the learning spaces' API and the status
functions and hand it to the templates. Every page string is a Chinese msgid
translated in ``classroom_ui/translations/en``.
"""

from __future__ import annotations

from flask import Flask

from edge_agent.pages import assets, filters, headers, i18n, library, student, teacher, technician
from edge_agent.pages import live

__all__ = ["register"]


def register(app: Flask) -> None:
    """Add the page blueprints, the template folder, Babel and the static assets."""
    i18n.init_app(app)
    assets.init_app(app)
    filters.init_app(app)
    headers.init_app(app)
    app.register_blueprint(library.bp)
    app.register_blueprint(technician.bp)
    app.register_blueprint(student.bp)
    app.register_blueprint(teacher.bp)
    app.register_blueprint(live.bp)  # the live lesson's classroom screen and tablet pages
