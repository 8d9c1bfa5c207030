"""Expected failures of the appliance (storage errors come from ``hub_sync.errors``).

    Problem (hub_sync.errors)
     └── EdgeError
          ├── ConfigError      unknown or invalid setting (startup)
          ├── NotFoundError    unknown resource, file or path (HTTP 404)
          ├── BadRequestError  malformed input (HTTP 400)
          └── PortInUseError   the port to serve on is taken
"""

from __future__ import annotations

from hub_sync.errors import Problem


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


class PortInUseError(EdgeError):
    code = "port_in_use"
