"""The maintenance answer on the LAN port while the software is being switched.

Between stopping the old version and committing the new one nothing may write to
the database, yet tablets should learn why the school's server is not answering.
A small threaded HTTP server takes the LAN port and answers every request with
503 and ``Retry-After``: JSON (``{"error": {...}}``, as every API error) for API
calls and a short page, Chinese first and English, for browsers. It lives in the
installer's process, so it goes with the installer whatever ends it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RETRY_AFTER_S = 30
MESSAGE_ZH = "学校服务器正在更新软件，请稍后再试"
MESSAGE_EN = "The school server is updating its software; please try again shortly"
PAGE = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{RETRY_AFTER_S}">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>正在更新 Updating</title></head>
<body><h1>{MESSAGE_ZH}</h1><p lang="en">{MESSAGE_EN}.</p></body></html>
""".encode("utf-8")
BODY = json.dumps({"error": {"code": "updating", "message": MESSAGE_ZH, "message_en": MESSAGE_EN}},
                  ensure_ascii=False).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        wants_page = "text/html" in self.headers.get("Accept", "") and not self.path.startswith("/api/")
        body, kind = (PAGE, "text/html; charset=utf-8") if wants_page else (BODY, "application/json; charset=utf-8")
        self.send_response(503)
        self.send_header("Retry-After", str(RETRY_AFTER_S))
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass  # tablets retrying every few seconds would flood the log


class MaintenanceFront:
    """503 on ``host:port`` until ``stop()`` (see the module docstring)."""

    def __init__(self, host: str, port: int) -> None:
        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="maintenance-front", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
