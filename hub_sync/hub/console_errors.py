"""Expected failures of the county console (accounts, logins, review), each with
its HTTP status; the pages show the message in the reader's language.

    SyncError (hub_sync.core.errors)
     └── ConsoleError           bad input to the console (400)
          ├── SignInError       not logged in, wrong name or password, session over (401)
          ├── RoleError         logged in, but this role may not do that (403)
          ├── NotFoundError     no such account, offer or resource (404)
          ├── DecidedError      someone else decided first, or the state forbids it (409)
          └── BusyError         too many password checks at once; retry soon (503, Retry-After)

(A locked account or address raises ``hub_sync.core.login_throttle.LoginLockedError``, 429.)
"""

from __future__ import annotations

from hub_sync.core.errors import SyncError


class ConsoleError(SyncError):
    code = "console"
    http_status = 400


class SignInError(ConsoleError):
    code = "auth_required"
    http_status = 401


class RoleError(ConsoleError):
    code = "forbidden"
    http_status = 403


class NotFoundError(ConsoleError):
    code = "not_found"
    http_status = 404


class DecidedError(ConsoleError):
    code = "conflict"
    http_status = 409


class BusyError(ConsoleError):
    """``details["retry_after_s"]`` says when to try again (sent as ``Retry-After`` too)."""

    code = "busy"
    http_status = 503
