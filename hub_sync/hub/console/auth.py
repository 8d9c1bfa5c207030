"""Logging in to the console, sessions, CSRF, and who may see what.

* ``/console/login`` (GET form, POST check) and ``/console/logout`` (POST). The
  password check is ``Accounts.login``: throttled per account and per address
  (``hub_sync.core.login_throttle``), argon2 with a cap on concurrent checks.
* The session: Flask's signed cookie holds a random token; the hub's database
  holds its hash (``hub_sync.hub.sessions``), so logout and disabling an account
  end it in every worker at once.
* Every console form carries Flask-WTF's CSRF token (``csrf_token()`` in templates);
  ``protect_forms`` checks it on every POST to a console page.
* ``require_role(*roles)`` guards a view: not logged in -> the login page (with a
  same-site ``next=``); logged in with another role -> 403 page. ``bureau_admin``
  passes every check. ``school_scope()`` is the school code a ``school_head`` is
  bound to (None for county-wide roles): report views filter by it, and
  ``check_school(code)`` refuses any other school.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect

from hub_sync.core.errors import Problem
from hub_sync.core.file_modes import private_dir
from hub_sync.core.login_throttle import LoginLockedError
from hub_sync.core.redirect_target import safe_next
from hub_sync.hub import sessions
from hub_sync.hub.accounts import ROLES, Account, Accounts
from hub_sync.hub.console_errors import BusyError, RoleError, SignInError
from hub_sync.hub.console.locale import pick

__all__ = ["bp", "init_app", "require_role", "school_scope", "check_school", "current_account", "console_blueprint"]

SECRET_FILE = "keys/console.key"
SESSION_KEY = "sid"

bp = Blueprint("console_auth", __name__)
csrf = CSRFProtect()


def _secret(data_dir: Path) -> bytes:
    """The console's cookie-signing secret: made once (0600 in keys/), shared by every worker."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        private_dir(path.parent)
        tmp = path.with_name(f".console.{os.getpid()}.{secrets.token_hex(4)}")
        tmp.write_bytes(secrets.token_bytes(32))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # first worker wins; the others read its secret
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def init_app(app: Flask) -> None:
    hub = app.extensions["hub"]
    app.secret_key = _secret(Path(hub.data_dir))
    app.config.update(SESSION_COOKIE_NAME="hub_console", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)
    csrf.init_app(app)
    app.jinja_env.globals["allowed"] = allowed
    app.jinja_env.globals["school_scope"] = school_scope


def _db():
    return current_app.extensions["hub"].db


def client_address() -> str:
    """The client's address, that logins are throttled by.

    Behind the hub's nginx front (``hub_front``) gunicorn listens on a unix socket only
    the front can open, so a request without a peer address came through the front,
    which passes the client's address in ``X-Real-IP``. From a loopback peer the header
    is believed only when the app's ``HUB_TRUST_FRONT_HEADER`` is set (a front on TCP);
    from anyone else never (a client could claim any address)."""
    remote = request.environ.get("REMOTE_ADDR") or ""
    try:
        trusted = not remote or (bool(current_app.config.get("HUB_TRUST_FRONT_HEADER"))
                                 and ipaddress.ip_address(remote).is_loopback)
        if trusted:
            return str(ipaddress.ip_address(request.headers.get("X-Real-IP", "").strip()))
    except ValueError:
        pass
    return remote or "unknown"


def current_account() -> Account | None:
    """The logged-in account of this request, or None (looked up once per request)."""
    if "account" not in g:
        account_id = sessions.lookup(_db(), session.get(SESSION_KEY))
        account = Accounts(_db()).get(account_id) if account_id is not None else None
        g.account = account if account is not None and account.active else None
    return g.account


def allowed(*roles: str) -> bool:
    """True if the logged-in account has one of ``roles`` (a bureau admin has them all)."""
    me = current_account()
    return me is not None and (me.role == "bureau_admin" or me.role in roles)


def require_role(*roles: str) -> Callable:
    """Decorator: the view needs a logged-in account with one of ``roles``
    (``bureau_admin`` always passes). Not logged in -> login page; other role -> 403."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            me = current_account()
            if me is None:
                raise SignInError("请先登录", "log in first")
            if not allowed(*roles):
                raise RoleError("你的账号没有权限查看这个页面", "your account may not use this page")
            return view(*args, **kwargs)
        return guarded
    return wrap


def school_scope() -> str | None:
    """The one school a ``school_head`` may see; None for county-wide roles."""
    me = current_account()
    return me.school if me is not None and me.role == "school_head" else None


def check_school(code: str | None) -> None:
    """Refuse (403) a school other than a school head's own; county-wide roles see every school."""
    scope = school_scope()
    if scope is not None and code != scope:
        raise RoleError("校长账号只能查看本校", "a school head's account sees only their own school")


def protect_forms() -> None:
    """before_request of every console blueprint: a POST needs the form's CSRF token."""
    if request.method == "POST":
        csrf.protect()


def show_problem(exc: Problem):
    """A console page's refusal: the login page for a missing session, else the error page."""
    if isinstance(exc, SignInError) and request.method == "GET":
        return redirect(f"/console/login?next={quote(request.full_path.rstrip('?'), safe='/?=&')}")
    rv = render_template("county/error.html", message=pick(exc.zh, exc.en), code=exc.code), exc.http_status
    if isinstance(exc, (LoginLockedError, BusyError)):
        return rv[0], rv[1], {"Retry-After": str(int(exc.details.get("retry_after_s", 1)))}
    return rv


def show_csrf(_exc: CSRFError):
    message = pick("页面已过期，请返回、刷新后再提交一次", "the page has expired; go back, reload it and submit again")
    return render_template("county/error.html", message=message, code="csrf"), 400


def frame_headers(response):
    """after_request: no other site may frame a console page (clickjacking); the
    console itself may (the preview of a PDF or a lesson)."""
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    policy = response.headers.get("Content-Security-Policy")
    if policy is None:
        response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
    elif "frame-ancestors" not in policy:
        response.headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'self'"
    return response


def console_blueprint(name: str) -> Blueprint:
    """A blueprint of a console page area: CSRF on its forms, HTML refusals, no framing by other sites."""
    area = Blueprint(name, __name__)
    area.before_request(protect_forms)
    area.after_request(frame_headers)
    area.register_error_handler(Problem, show_problem)
    area.register_error_handler(CSRFError, show_csrf)
    return area


bp.before_request(protect_forms)
bp.after_request(frame_headers)
bp.register_error_handler(Problem, show_problem)
bp.register_error_handler(CSRFError, show_csrf)

@bp.get("/console/login")
def login_form():
    """The console's login page."""
    return render_template("county/login.html", next=safe_next(request.args.get("next"), "/console/"), error=None)


@bp.post("/console/login")
def login():
    target = safe_next(request.form.get("next"), "/console/")
    try:
        _account, token = Accounts(_db()).login(request.form.get("name", ""), request.form.get("password", ""),
                                                client_address())
    except SignInError as exc:
        return render_template("county/login.html", next=target, error=pick(exc.zh, exc.en)), exc.http_status
    old = session.get(SESSION_KEY)
    sessions.end(_db(), old)
    session.clear()  # a fresh cookie (and CSRF token) for the new session
    session[SESSION_KEY] = token
    return redirect(target)


@bp.post("/console/logout")
def logout():
    sessions.end(_db(), session.get(SESSION_KEY))
    session.clear()
    return redirect("/console/login")
