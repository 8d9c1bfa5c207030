"""The school appliance: content store, catalogue, LAN serving, learning spaces."""

from firmware import __version__  # one version for the installed software

from edge_agent.app import create_app  # noqa: E402

__all__ = ["create_app", "__version__"]
