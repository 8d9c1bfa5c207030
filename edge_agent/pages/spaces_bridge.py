"""How the pages use the learning spaces: their JSON API, called in-process.

A page view asks the spaces' own view function (``api("spaces_teaching.my_home")``)
and renders the JSON it returns, so access rules, validation and read models
live in one place (``edge_agent.spaces``). The session comes from the same
cookie, loaded by the spaces' ``load_session``. Changes (answers, hand-ins,
grades, assignments) are sent by the page's script straight to ``/api/v1/``
with the session's CSRF token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, current_app, g, jsonify, redirect, request

from edge_agent.spaces.api_common import load_session
from edge_agent.spaces.const import SESSION_COOKIE
from edge_agent.spaces.errors import AuthRequiredError
from edge_agent.pages.errors import page_errors


def api(endpoint: str, **kwargs: Any) -> Any:
    """The JSON body the spaces API answers for ``endpoint`` (errors are raised as Problems)."""
    response = current_app.make_response(current_app.view_functions[endpoint](**kwargs))
    return response.get_json()


def viewer():
    """The logged-in person, or ``None``."""
    s = g.get("space_session")
    return s.person if s is not None else None


def csrf_token() -> str:
    s = g.get("space_session")
    return s.csrf if s is not None else ""


def attach_session(bp: Blueprint) -> Blueprint:
    """Let a blueprint's views and templates know who is logged in (``me``, ``space_csrf``)."""
    bp.before_request(load_session)

    @bp.context_processor
    def who():
        return {"me": viewer(), "space_csrf": csrf_token()}

    return bp


def space_blueprint(name: str, login_url: str) -> Blueprint:
    """A page blueprint that knows who is logged in and sends the logged-out to ``login_url``."""
    bp = attach_session(Blueprint(name, __name__))
    page_errors(bp)

    @bp.errorhandler(AuthRequiredError)
    def login_first(exc: AuthRequiredError):
        if request.path.startswith("/api/"):
            return jsonify(exc.to_json()), exc.http_status
        had_cookie = bool(request.cookies.get(SESSION_COOKIE))
        target = f"{login_url}?next={quote(request.full_path)}"
        return redirect(target + ("&expired=1" if had_cookie else ""))

    return bp
