"""The TLS context every HTTP client of a process shares.

httpx builds a new ``ssl.SSLContext`` for every client (and every ``httpx.get``) it makes,
loading certifi's whole CA bundle each time: ~20-40 ms of CPU, even for a plain ``http://``
URL on the LAN. A process that polls a server (waiting for it to answer, a health check, a
live lesson's playlist) paid that on every poll: under the test suite it was a sixth of all
Python CPU. One context, made at first use, gives the same verification (httpx's default:
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set, else certifi's bundle) without the cost.
An ``SSLContext`` may be shared by any number of clients and threads.
"""

from __future__ import annotations

import functools
import os
import ssl

__all__ = ["client_tls"]


@functools.cache
def client_tls() -> ssl.SSLContext:
    """The process's shared client TLS context (pass it as ``verify=`` to httpx)."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
