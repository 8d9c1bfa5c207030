"""What every learning-space endpoint shares: the session from the cookie, the
CSRF rule, the current viewer, JSON bodies.

CSRF rule for the JSON API (tested in tests/test_spaces_login.py):

* a state-changing request (POST, PUT, PATCH, DELETE) that carries a live session
  cookie must send the header ``X-CSRF-Token`` equal to that session's token
  (from ``GET /api/v1/session`` or the login answer);
* one without a session, and the three logins, must send ``X-Requested-With``
  (any value): a cross-site form cannot set a custom header, and we allow no CORS.
  A login on a device that still has a session ends that session first.

Browser form posts of the pages use Flask-WTF's ``CSRFProtect`` (initialised
with checks off by default; a pages blueprint calls ``csrf.protect()``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request

from edge_agent.errors import BadRequestError
from edge_agent.spaces import const
from edge_agent.spaces.errors import AuthRequiredError, BusyError, CsrfError, ForbiddenError, LockedError
from edge_agent.spaces.people import Person
from edge_agent.spaces.sessions import Session, lookup_session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_ENDPOINTS = frozenset({"spaces_auth.login_staff", "spaces_auth.login_student", "spaces_auth.login_card"})
# endpoints a staff member who must change their first password may still use
FIRST_LOGIN_ENDPOINTS = frozenset({"spaces_auth.session", "spaces_auth.password", "spaces_auth.logout",
                                   "spaces_auth.logout_everywhere"})


def appliance():
    return current_app.extensions["appliance"]


def db():
    return appliance().db


def load_session() -> None:
    """before_request of every learning-space blueprint."""
    token = request.cookies.get(const.SESSION_COOKIE, "")
    session = lookup_session(db(), token) if token else None
    g.space_session = session
    if request.method not in SAFE_METHODS:
        if request.endpoint in LOGIN_ENDPOINTS and request.headers.get(const.LOGIN_HEADER):
            pass  # a login acts on no existing session; the custom header is its CSRF defence
        elif session is not None:
            if request.headers.get(const.CSRF_HEADER, "") != session.csrf:
                raise CsrfError("缺少或错误的 CSRF 令牌，请刷新页面后重试",
                                f"missing or wrong {const.CSRF_HEADER} header; reload the page and try again")
        elif not request.headers.get(const.LOGIN_HEADER):
            raise CsrfError(f"请求缺少 {const.LOGIN_HEADER} 头", f"request lacks the {const.LOGIN_HEADER} header")
    if session is not None and session.person.must_change and request.endpoint not in FIRST_LOGIN_ENDPOINTS:
        raise ForbiddenError("首次登录请先修改密码", "change your first password before anything else")


def request_may_read_answer_keys() -> bool:
    """For the content routes (``content_api.ANSWER_KEY_READER``): does this request's
    session belong to someone who may read exercise answers?"""
    from edge_agent.spaces.access import can_read_answer_keys

    token = request.cookies.get(const.SESSION_COOKIE, "")
    session = lookup_session(db(), token) if token else None
    return can_read_answer_keys(session.person if session else None)


def current_session() -> Session:
    session = g.get("space_session")
    if session is None:
        raise AuthRequiredError("请先登录", "log in first")
    return session


def viewer() -> Person:
    """The logged-in person (401 if nobody is)."""
    return current_session().person


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequestError("请求内容应为 JSON 对象", "request body must be a JSON object")
    return data


def int_field(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise BadRequestError(f"{name} 应为整数", f"{name} must be a whole number")
    return int(value)


def set_session_cookie(response, token: str, max_age_s: float) -> None:
    response.set_cookie(const.SESSION_COOKIE, token, max_age=int(max_age_s), httponly=True, samesite="Lax",
                        secure=request.is_secure, path="/")


def retry_later(exc: LockedError | BusyError):
    """A refusal that says when to come back: the JSON error and ``Retry-After`` (seconds)."""
    response = jsonify(exc.to_json())
    response.status_code = exc.http_status
    response.headers["Retry-After"] = str(int(exc.details.get("retry_after_s", 1)))
    return response


def blueprint(name: str) -> Blueprint:
    bp = Blueprint(name, __name__)
    bp.before_request(load_session)
    bp.register_error_handler(LockedError, retry_later)
    bp.register_error_handler(BusyError, retry_later)
    return bp


def init_csrf(app: Flask) -> None:
    """Flask-WTF CSRFProtect for browser forms, off by default (the JSON API uses the header rule)."""
    if "csrf" in app.extensions:
        return
    from flask_wtf.csrf import CSRFProtect

    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    CSRFProtect(app)
