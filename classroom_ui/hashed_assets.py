"""Static files served under a URL that carries their content hash (``app.css?v=1a2b3c4d5e``).

The classroom pages and the county console both serve their CSS, scripts and icons
themselves (no CDN, ever). A browser may keep a file a year when the URL's hash is
the current one, and still picks up a new version at once; an old or missing hash is
answered with ``max-age=0``. Presentation only: nothing here knows the appliance or the hub.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from flask import Response, abort, request, send_from_directory

IMMUTABLE_MAX_AGE_S = 365 * 24 * 3600  # an asset's URL carries its hash: it never changes


def asset_versions(folder: Path, names: Iterable[str] | None = None) -> dict[str, str]:
    """name -> first 10 hex digits of its sha256, for ``names`` (default: every file below ``folder``)."""
    if names is None:
        names = [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")) if p.is_file()]
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()[:10] for name in names}


def send_asset(folder: Path, name: str, versions: dict[str, str], max_age_s: int = IMMUTABLE_MAX_AGE_S) -> Response:
    """Send ``name`` from ``folder``: 404 unless it is listed, cached for good only under its current hash."""
    if name not in versions:
        abort(404)
    current = request.args.get("v") == versions[name]
    rv = send_from_directory(folder, name, max_age=max_age_s if current else 0)
    if current:
        rv.cache_control.public = True
        rv.cache_control.immutable = True
    return rv
