"""HTTP responses for stored files: Range, ETag and caching, served by sendfile.

Werkzeug does the HTTP work (parsing ``Range``, ``If-Range``, ``If-None-Match``,
answering 206/304/416). We only make sure the body stays a ``wsgi.file_wrapper``
positioned at the range start, because that is what lets gunicorn hand the bytes
to the kernel with ``sendfile`` instead of copying them through Python.
"""

from __future__ import annotations

import os
from pathlib import Path

import re

from flask import Response, jsonify, request
from werkzeug.http import parse_range_header
from werkzeug.wsgi import wrap_file

from edge_agent.const import CATALOGUE_MAX_AGE_S, IMMUTABLE_MAX_AGE_S


_ZERO_SUFFIX = re.compile(r"(^|,)\s*-0*\s*(,|$)")

# Types a browser runs scripts in when opened as a page (a lesson's HTML, an SVG
# picture opened in a tab, XHTML, XML with an XSLT or XHTML inside): served with a
# CSP sandbox, so their scripts never run with the appliance's origin or cookies.
ACTIVE_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
                          "text/xsl", "application/xslt+xml", "application/rdf+xml", "application/mathml+xml"})
LESSON_SANDBOX = "sandbox allow-scripts allow-forms"


def is_active_type(mime: str) -> bool:
    """Whether a browser may run scripts in a file of this MIME type (any ``+xml`` counts)."""
    base = (mime or "").split(";", 1)[0].strip().lower()
    return base in ACTIVE_TYPES or base.endswith("+xml")


def _range_environ(size: int) -> tuple[dict | None, Response | None]:
    """The environ werkzeug should see, or a 416 answer for a malformed ``Range``.

    A malformed ``bytes`` range gets 416 with a JSON message (the client asked for
    something impossible). Ranges in another unit, and several ranges at once, are
    ignored as RFC 9110 allows: the whole file is sent, by sendfile.
    """
    environ = request.environ
    value = environ.get("HTTP_RANGE")
    if value is None:
        return environ, None
    parsed = parse_range_header(value)
    unit = value.split("=", 1)[0].strip().lower()
    if unit != "bytes" or (parsed is not None and len(parsed.ranges) > 1):
        return {k: v for k, v in environ.items() if k not in ("HTTP_RANGE", "HTTP_IF_RANGE")}, None
    if parsed is None or _ZERO_SUFFIX.search(value.split("=", 1)[1]):
        rv = jsonify({"error": {"code": "bad_range", "message": f"Range 请求头格式有误：{value[:80]}",
                                "message_en": f"malformed Range header: {value[:80]}; use e.g. bytes=0-1023"}})
        rv.status_code = 416
        rv.headers["Content-Range"] = f"bytes */{size}"
        return None, rv
    return environ, None


def file_response(path: Path, mime: str, etag: str, immutable: bool, download_name: str | None = None,
                  private: bool = False) -> Response:
    """A conditional, range-capable response for the file at ``path``.

    ``private`` files (answer keys, pupils' work) are never kept by a shared cache."""
    f = path.open("rb")
    size = os.fstat(f.fileno()).st_size
    environ, refusal = _range_environ(size)
    if refusal is not None:
        f.close()
        return refusal
    rv = Response(wrap_file(request.environ, f), mimetype=mime, direct_passthrough=True)
    rv.content_length = size
    rv.set_etag(etag)
    _file_headers(rv, mime, immutable, private)
    if download_name:
        rv.headers["Content-Disposition"] = "inline"
    try:
        rv.make_conditional(environ, accept_ranges=True, complete_length=size)
    except Exception:
        f.close()
        raise
    if rv.status_code == 206 and rv.content_range is not None:
        # replace werkzeug's Python-level range wrapper by the file itself, seeked
        f.seek(rv.content_range.start)
        rv.response = wrap_file(request.environ, f)
    elif rv.status_code == 304 or request.method == "HEAD":
        f.close()
        rv.response = []
    return rv


def accel_response(path: Path, store_root: Path, location: str, mime: str, immutable: bool,
                   private: bool = False) -> Response:
    """Headers only, with ``X-Accel-Redirect`` naming the blob under nginx's internal
    ``location`` (see ``edge_agent.front``): the app checked access and chose the type
    and caching; nginx sends the bytes (sendfile, Range, conditional requests)."""
    rv = Response(b"", mimetype=mime)
    rv.headers["X-Accel-Redirect"] = location + path.relative_to(store_root).as_posix()
    _file_headers(rv, mime, immutable, private)
    return rv


def _file_headers(rv: Response, mime: str, immutable: bool, private: bool) -> None:
    """Caching, no sniffing and the lesson sandbox: the same whoever sends the bytes."""
    if private:  # answer keys and hand-ins: this browser only, never a shared cache
        rv.cache_control.private = True
        rv.cache_control.no_cache = True
        rv.cache_control.max_age = 0
        rv.vary.add("Cookie")
    elif immutable:
        rv.cache_control.public = True
        rv.cache_control.max_age = IMMUTABLE_MAX_AGE_S
        rv.cache_control.immutable = True
    else:
        rv.cache_control.no_cache = True
        rv.cache_control.max_age = CATALOGUE_MAX_AGE_S
    rv.headers["X-Content-Type-Options"] = "nosniff"
    if is_active_type(mime):
        # lessons run scripts, but never with the appliance's origin or cookies
        rv.headers["Content-Security-Policy"] = LESSON_SANDBOX
