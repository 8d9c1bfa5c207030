"""The LAN-facing front: Debian's nginx in front of gunicorn, as a production deployment has.

``school-edge edge serve`` (and the demo) with the setting ``front = nginx`` (the
default) start nginx as a supervised child with a configuration generated from
the settings into ``<data>/run/nginx.conf``; gunicorn listens on a unix socket in
the same 0700 folder (``run/app.sock``, 0600), so only nginx talks to the app.
Everything nginx writes (pid, error log, spooled request bodies) stays in ``run/``.

What nginx does, and why it is here rather than in the app:

* content files: ``/content/<sha256>/<name>`` straight from the blob store with
  sendfile, Range, ETag, a year of immutable caching and gzip for text types; the
  type comes from ``<name>``'s extension. nginx finds them through ``run/public/``,
  symbolic links to the catalogued blobs that are not exercise answer keys
  (``edge_agent.library.public_links``, rebuilt when the catalogue changes); a blob without a link (an
  answer key, a missing or quarantined blob) and the other file URLs
  (``/content/<sha256>``, ``/r/<resource>/<path>``) go to the app, which decides
  access and headers and answers with ``X-Accel-Redirect`` to the internal
  ``/_blob/`` location, so nginx still sends the bytes;
* slow clients: short header/body/send/keep-alive timeouts (``request_timeout_s``);
  a slowloris crowd costs nginx a few bytes per connection and the app nothing;
* request bodies: buffered by nginx (spooled to ``run/nginx-tmp`` past 16 KiB),
  at most ``json_body_kb`` everywhere, ``max_upload_mb`` on the upload routes;
* logins: at most ``login_rate_per_min`` POSTs per client address (429 with a JSON
  body), before the app's own per-account throttling;
* the client's address reaches the app in ``X-Real-IP`` (``trust_front_header``).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from hub_sync.core import nginx_front
from hub_sync.core.nginx_front import FileRoute, FrontPaths, FrontSpec, render, write_config

from edge_agent.config import EdgeConfig
from edge_agent.errors import ConfigError

log = logging.getLogger(__name__)

NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
OPEN_FILE_CACHE_VALID_S = 10  # nginx may send a file it opened this long ago without looking again
BLOB_LOCATION = "/_blob/"  # internal: the app's X-Accel-Redirect target
# lesson types that can run script (file_response.is_active_type: HTML, XSL, any XML) get this CSP
SANDBOX = "sandbox allow-scripts allow-forms"
GZIP_TYPES = ("text/plain", "text/css", "text/xml", "application/javascript", "application/json", "image/svg+xml",
              "application/xml", "application/xhtml+xml", "text/vtt", "text/csv")
# routes whose bodies are files (hand-ins, uploads, a roster): limited by max_upload_mb
UPLOAD_ROUTES = r"^/api/v1/(uploads|roster|assignments/[0-9]+/submissions)$"


class FrontError(ConfigError, nginx_front.FrontError):
    """The front cannot run: nginx missing, its configuration refused, it exited."""

    code = "front"


def nginx_binary() -> str:
    """The nginx program, or FrontError saying what to install."""
    found = shutil.which("nginx") or next((p for p in NGINX_PATHS if os.access(p, os.X_OK)), None)
    if not found:
        raise FrontError("未安装 nginx：请运行 apt-get install nginx（或设置 front=none 仅供开发）",
                         "nginx is not installed: run apt-get install nginx (or set front=none, for development only)")
    return found


CONTENT_FILES = r"^/content/(?<blob_dir>[0-9a-f]{2})(?<blob_rest>[0-9a-f]{62})/[^/]+$"
LIVE_PLAYLISTS = (r"^/live/(?<live_path>([A-Za-z0-9][A-Za-z0-9_.-]*/)?([a-z0-9]+/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*"
                  r"[.](m3u8|json))$")
SANDBOX_HEADER = ("Content-Security-Policy", "$active_sandbox")


def nginx_config(cfg: EdgeConfig, paths: FrontPaths, content_root: Path) -> str:
    """The nginx configuration for ``cfg`` (a pure function of the settings and paths), rendered
    by ``hub_sync.core.nginx_front`` from the appliance's description."""
    live = (Path(cfg.data_dir) / "live").resolve()  # edge_agent.live.store.LAN_DIR
    http_extra = (
        # types Debian's list lacks that lessons use (the same as Python's mimetypes gives the catalogue)
        "types { text/vtt vtt; audio/wav wav; audio/ogg oga opus; audio/flac flac; application/epub+zip epub;"
        " text/javascript mjs; }",
        "charset_types text/plain text/css text/xml text/vtt application/javascript image/svg+xml;",
        # open files and the public links' targets stay open/known for a while: lesson assets are
        # small and fetched by a whole class; a quarantined blob or a removed link may still be
        # sent for up to open_file_cache_valid after the change
        "open_file_cache max=4096 inactive=60s;",
        f"open_file_cache_valid {OPEN_FILE_CACHE_VALID_S}s;",
        "open_file_cache_errors off;",
        # lesson types that can run script get the sandbox
        f'map $sent_http_content_type $active_sandbox {{ default ""; "~*^(text/html|text/xsl|[^;]*[/+]xml)" "{SANDBOX}"; }}',
    )
    # live lessons (专递课堂): files the puller verified, written atomically (edge_agent.live.store);
    # playlists and status change every segment, segments never do; a playlist is replaced by a
    # rename, so nginx must not keep the old file open (open_file_cache would serve it for seconds)
    live_locations = (
        f'location ~ "{LIVE_PLAYLISTS}" {{\n            alias "{live}/$live_path";\n            open_file_cache off;\n'
        '            add_header Cache-Control "no-cache" always;\n            add_header X-Content-Type-Options nosniff always;\n        }',
        f'location /live/ {{\n            alias "{live}/";\n            add_header Cache-Control "public, max-age=3600" always;\n'
        "            add_header X-Content-Type-Options nosniff always;\n        }",
    )
    return render(FrontSpec(
        host=cfg.host, port=cfg.port, request_timeout_s=cfg.request_timeout_s, json_body_kb=cfg.json_body_kb,
        body_routes=((UPLOAD_ROUTES, cfg.max_upload_mb),),
        login_prefixes=("/api/v1/login/",), login_rate_per_min=cfg.login_rate_per_min,
        # content-addressed files nobody needs to be asked about: nginx sends them from the public links
        # (library.public_links), the type from <name>; anything else (an answer key, a missing or
        # quarantined blob) goes to the app
        files=(FileRoute(CONTENT_FILES, f"{paths.public}/$blob_dir/$blob_rest", headers=(SANDBOX_HEADER,)),),
        # the app's X-Accel-Redirect: it chose the file and the headers, nginx sends the bytes
        accel_location=BLOB_LOCATION, accel_root=Path(content_root), accel_headers=(SANDBOX_HEADER,),
        busy_zh="设备正在启动或繁忙，请稍后再试", busy_en="the appliance is starting or busy; try again shortly",
        comment="school-edge from its settings", gzip_types=GZIP_TYPES, gzip_comp_level=5,
        http_extra=http_extra, extra_locations=live_locations,
    ), paths)


def prepare(cfg: EdgeConfig, content_root: Path) -> FrontPaths:
    """Create ``run/`` (0700), write the configuration and have nginx check it; FrontError if refused."""
    nginx = nginx_binary()
    paths = FrontPaths.of(cfg.data_dir)
    return write_config(nginx, paths, nginx_config(cfg, paths, content_root))


class Front(nginx_front.Front):
    """nginx as a supervised child of ``edge serve`` (``hub_sync.core.nginx_front.Front``)."""

    def __init__(self, cfg: EdgeConfig, paths: FrontPaths) -> None:
        super().__init__(nginx_binary(), paths, cfg.host, cfg.port)
        self.cfg = cfg
