"""The county hub: device registry, channels and TUF repository, usage ingestion."""

from hub_sync.hub.hub import Hub

__all__ = ["Hub"]
