"""The appliance's software as an installed, versioned whole.

``__version__`` is the one version number of the installed software, which
``/api/v1/status``, ``school-edge --version`` and the package metadata all
report (a release build stamps its own into its copy of this file). The modules
build signed releases and install them on the appliance: two slots, a trial on a
local port with a health check, commit or automatic rollback, and the
supervisor that serves the current slot (see docs/updates.md). Nothing here
imports the appliance (``edge_agent``): the commands in
``edge_agent.firmware_cli`` hand in what only the appliance knows.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
