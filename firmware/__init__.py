"""The appliance's software as an installed, versioned whole.

Signed update bundles (build, verify, A/B install, health check, rollback) come
with their own issue. Until then this package holds only what the foundation
needs: the one version number of the installed software, which
``/api/v1/status``, ``school-edge --version`` and the package metadata all
report, and which update bundles will be compared against.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
