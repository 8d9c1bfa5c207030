"""An offered file, sent to the reviewer's browser for preview.

Only reviewers (and bureau admins) may fetch it, only a file of an offer, and it is
sent with the headers the appliance gives content files (``edge_agent.library.
file_response``'s rules, here in the hub's own code): ``nosniff``, private caching,
Range requests (video and audio seek), and for an active type (HTML lessons, SVG,
XML) a ``Content-Security-Policy: sandbox`` so its scripts never run with the
console's origin or cookies, whatever frame or tab it is opened in.
"""

from __future__ import annotations

from flask import abort, current_app, send_file

from hub_sync.hub.offers import Offers
from hub_sync.hub.console.auth import console_blueprint, require_role

bp = console_blueprint("console_preview")

ACTIVE_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"})
LESSON_SANDBOX = "sandbox allow-scripts allow-forms; default-src 'self' data: blob: 'unsafe-inline'"


def is_active_type(mime: str) -> bool:
    """True for a type a browser would run (scripts): it gets the sandbox."""
    base = (mime or "").split(";")[0].strip().lower()
    return base in ACTIVE_TYPES or base.endswith("+xml")


@bp.get("/console/review/<int:offer_id>/files/<sha256>")
@require_role("reviewer")
def offered_file(offer_id: int, sha256: str):
    hub = current_app.extensions["hub"]
    offer = Offers(hub.db).get(offer_id)
    entry = next((f for f in offer.files if f["sha256"] == sha256), None)
    if entry is None or not hub.store.has(sha256):
        abort(404)
    rv = send_file(hub.store.path_for(sha256).resolve(), mimetype=entry["mime"], conditional=True, etag=sha256, max_age=0,
                   download_name=entry["path"])
    rv.headers["Content-Disposition"] = "inline"
    rv.headers["X-Content-Type-Options"] = "nosniff"
    rv.cache_control.private = True
    if is_active_type(entry["mime"]):
        rv.headers["Content-Security-Policy"] = LESSON_SANDBOX
    return rv
