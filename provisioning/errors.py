"""Expected failures of provisioning.

    Problem (hub_sync.core.errors)
     └── ProvisionError
          ├── BundleError      the bundle is missing, malformed or badly signed
          ├── AlreadyProvisionedError  the appliance belongs to another school or hub
          └── UsbError               a USB stick's problems
               ├── RosterError            not a sealed roster, or a bad roster file
               │    └── WrongPassphraseError
               ├── WrongSchoolError       the stick (or roster, or export) is for another school
               ├── UnsafePathError        a name on the stick tries to leave its folder
               ├── IncompleteError        a half-written export or pack (no complete marker)
               ├── StickTooSmallError     not enough room on the stick, found before writing
               └── NothingToDoError       no school-edge folder on the stick
"""

from __future__ import annotations

from hub_sync.core.errors import Problem


class ProvisionError(Problem):
    """Base of every expected failure of provisioning."""

    code = "provision_error"


class BundleError(ProvisionError):
    code = "bad_bundle"
    http_status = 400


class AlreadyProvisionedError(ProvisionError):
    code = "already_provisioned"
    http_status = 409


class UsbError(ProvisionError):
    """Base of the USB stick's expected failures."""

    code = "usb"
    http_status = 400


class RosterError(UsbError):
    code = "roster"


class WrongPassphraseError(RosterError):
    code = "wrong_passphrase"
    http_status = 403


class WrongSchoolError(UsbError):
    code = "wrong_school"
    http_status = 409


class UnsafePathError(UsbError):
    code = "unsafe_path"


class IncompleteError(UsbError):
    code = "incomplete"
    http_status = 409


class StickTooSmallError(UsbError):
    code = "stick_too_small"
    http_status = 507


class NothingToDoError(UsbError):
    code = "nothing_on_stick"
    http_status = 404
