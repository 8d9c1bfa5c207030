"""Headers every page and API answer carries: no other site may frame the appliance.

A page of the appliance inside a frame on another site could be dressed up to
trick a teacher into clicking (clickjacking), so pages and API answers say
``Content-Security-Policy: frame-ancestors 'self'`` (browsers that know CSP) and
``X-Frame-Options: SAMEORIGIN`` (older ones). Content files are left as
``edge_agent.library.file_response`` makes them: lessons are framed by the
appliance's own player, and active types carry their own sandbox policy.
"""

from __future__ import annotations

from flask import Flask, Response, request

__all__ = ["init_app", "FRAME_ANCESTORS", "CONTENT_ENDPOINTS"]

FRAME_ANCESTORS = "frame-ancestors 'self'"
# the views that send a stored file as it is (see edge_agent.library.content_api)
CONTENT_ENDPOINTS = frozenset({"content.content", "content.resource_file"})


def frame_headers(response: Response) -> Response:
    """after_request: forbid framing by other sites on everything but content files."""
    if request.endpoint in CONTENT_ENDPOINTS:
        return response
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    policy = response.headers.get("Content-Security-Policy")
    if policy is None:
        response.headers["Content-Security-Policy"] = FRAME_ANCESTORS
    elif "frame-ancestors" not in policy:
        response.headers["Content-Security-Policy"] = f"{policy}; {FRAME_ANCESTORS}"
    return response


def init_app(app: Flask) -> None:
    app.after_request(frame_headers)
