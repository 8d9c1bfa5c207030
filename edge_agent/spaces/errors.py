"""Expected failures of the learning spaces.

    EdgeError (edge_agent.errors)
     └── SpaceError
          ├── AuthRequiredError  not logged in, or the session expired (401)
          ├── ForbiddenError     logged in, but not allowed to do this (403)
          ├── CsrfError          state-changing request without the CSRF header (403)
          ├── LockedError        too many failed logins; wait (429, Retry-After)
          ├── BusyError          too many password checks at once; retry soon (503, Retry-After)
          ├── ConflictError      the change clashes with the current state (409)
          ├── TooLargeError      upload bigger than allowed (413)
          ├── QuotaError         the person's hand-in or upload space is full (413; details: used, limit)
          ├── UnsupportedTypeError  upload of a type not allowed (415)
          └── RosterError        a roster refused; ``details["problems"]`` lists each line (400)
"""

from __future__ import annotations

from edge_agent.errors import EdgeError


class SpaceError(EdgeError):
    code = "space_error"
    http_status = 400


class AuthRequiredError(SpaceError):
    code = "auth_required"
    http_status = 401


class ForbiddenError(SpaceError):
    code = "forbidden"
    http_status = 403


class CsrfError(SpaceError):
    code = "csrf"
    http_status = 403


class LockedError(SpaceError):
    """``details["retry_after_s"]`` says when to try again (sent as ``Retry-After`` too)."""

    code = "locked"
    http_status = 429


class BusyError(SpaceError):
    """``details["retry_after_s"]`` says when to try again (sent as ``Retry-After`` too)."""

    code = "busy"
    http_status = 503


class ConflictError(SpaceError):
    code = "conflict"
    http_status = 409


class TooLargeError(SpaceError):
    code = "too_large"
    http_status = 413


class QuotaError(SpaceError):
    """``details`` has ``used_bytes``, ``limit_bytes`` and ``incoming_bytes``."""

    code = "quota_exceeded"
    http_status = 413


class UnsupportedTypeError(SpaceError):
    code = "unsupported_type"
    http_status = 415


class RosterError(SpaceError):
    code = "roster"
    http_status = 400


def forbidden() -> ForbiddenError:
    return ForbiddenError("你没有权限查看或修改这项内容", "you are not allowed to see or change this")
