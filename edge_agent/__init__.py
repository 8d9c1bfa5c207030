"""The school appliance: content store, catalogue, LAN serving, learning spaces."""

__version__ = "0.1.0"

from .web import create_app  # noqa: E402

__all__ = ["create_app", "__version__"]
