"""The firmware package's expected failures (one line, Chinese and English).

    Problem
     └── FirmwareError
          ├── BuildError     a release could not be built (no source, pip failed)
          ├── InstallError   an install was refused or could not start (nothing changed)
          └── RollbackError  ``firmware rollback`` has nothing to go back from
"""

from __future__ import annotations

from hub_sync.core.errors import Problem


class FirmwareError(Problem):
    """Base of the firmware package's expected failures."""

    code = "firmware"


class BuildError(FirmwareError):
    code = "firmware_build"


class InstallError(FirmwareError):
    code = "firmware_install"
    http_status = 409


class RollbackError(FirmwareError):
    code = "firmware_rollback"
    http_status = 409
