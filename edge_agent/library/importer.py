"""Adding local files to the school library as one resource."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mimetypes
import secrets
from pathlib import Path

from edge_agent.library.catalogue import Resource, ResourceFile, validate

if TYPE_CHECKING:  # the Appliance sits above this layer; only its type is needed here
    from edge_agent.appliance import Appliance

mimetypes.add_type("image/svg+xml", ".svg")
mimetypes.add_type("audio/wav", ".wav")
mimetypes.add_type("video/mp4", ".mp4")
mimetypes.add_type("text/vtt", ".vtt")


def mime_for(name: str) -> str:
    """The MIME type a browser needs for this file name."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def import_files(appliance: Appliance, files: list[Path], resource_id: str | None = None, **meta: str) -> Resource:
    """Store ``files`` (the first is the main one) and catalogue them as one resource.

    Metadata is validated and disk space checked before any byte is written.
    """
    resource = Resource(id=resource_id or "r-" + secrets.token_hex(6), title=meta.pop("title"), kind=meta.pop("kind"),
                        files=[ResourceFile(f.name, "0" * 64, f.stat().st_size, mime_for(f.name)) for f in files],
                        **meta)
    validate(resource)
    appliance.store.check_space(sum(f.stat().st_size for f in files))
    stored = [appliance.store.put_file(f) for f in files]
    resource.files = [ResourceFile(f.name, b.sha256, b.size, mime_for(f.name)) for f, b in zip(files, stored)]
    appliance.catalogue.upsert(resource)
    return resource
