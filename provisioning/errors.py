"""Expected failures of provisioning.

    Problem (hub_sync.errors)
     └── ProvisionError
          ├── BundleError      the bundle is missing, malformed or badly signed
          └── AlreadyProvisionedError  the appliance belongs to another school or hub
"""

from __future__ import annotations

from hub_sync.errors import Problem


class ProvisionError(Problem):
    """Base of every expected failure of provisioning."""

    code = "provision_error"


class BundleError(ProvisionError):
    code = "bad_bundle"
    http_status = 400


class AlreadyProvisionedError(ProvisionError):
    code = "already_provisioned"
    http_status = 409
