"""The county hub: device registry, channels and TUF repository, usage ingestion."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub_sync.hub.hub import Hub

__all__ = ["Hub"]


def __getattr__(name: str):
    # Hub pulls in SQLAlchemy and the schema; the CLI imports this package's command modules
    # for every `school-edge` process, so an appliance command must not pay for the hub's
    if name == "Hub":
        from hub_sync.hub.hub import Hub

        return Hub
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
