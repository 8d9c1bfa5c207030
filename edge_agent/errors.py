"""Expected failures of the appliance (storage errors come from ``hub_sync.core.errors``).

    Problem (hub_sync.core.errors)
     └── EdgeError
          ├── ConfigError      unknown or invalid setting (startup)
          ├── NotFoundError    unknown resource, file or path (HTTP 404)
          ├── BadRequestError  malformed input (HTTP 400)
          ├── TeachersOnlyError  a file only teachers may open, e.g. an exercise's answers (HTTP 403)
          └── NotProvisionedError  no hub configured yet (HTTP 409)

The serving layer is shared with the hub, so ``PortInUseError`` lives in
``hub_sync.core.errors`` and is re-exported here.
"""

from __future__ import annotations

from hub_sync.core.errors import PortInUseError, Problem

__all__ = ["EdgeError", "ConfigError", "NotFoundError", "BadRequestError", "TeachersOnlyError", "NotProvisionedError",
           "PortInUseError"]


class EdgeError(Problem):
    """Base of every expected failure of the appliance."""

    code = "edge_error"


class ConfigError(EdgeError):
    code = "config"


class NotFoundError(EdgeError):
    code = "not_found"
    http_status = 404


class BadRequestError(EdgeError):
    code = "bad_request"
    http_status = 400


class TeachersOnlyError(EdgeError):
    code = "teachers_only"
    http_status = 403


class NotProvisionedError(EdgeError):
    code = "not_provisioned"
    http_status = 409
