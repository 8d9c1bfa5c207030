"""The school appliance: content store, catalogue, learning spaces, classroom pages,
sync with the county hub. See docs/architecture.md for its layers.

``edge_agent.app.create_app`` builds the WSGI app; ``edge_agent.wiring`` assembles a
served appliance (routes and background jobs); ``edge_agent.cli`` is ``school-edge``.
"""

from firmware import __version__  # one version for the installed software

__all__ = ["__version__"]
