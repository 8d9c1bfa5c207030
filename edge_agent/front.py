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
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hub_sync.core.processes import SupervisedProcess, wait_until

from edge_agent.config import EdgeConfig
from edge_agent.errors import ConfigError

log = logging.getLogger(__name__)

NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
MIME_TYPES = "/etc/nginx/mime.types"
RUN_DIR = "run"
START_TIMEOUT_S = 10.0
OPEN_FILE_CACHE_VALID_S = 10  # nginx may send a file it opened this long ago without looking again
STOP_GRACE_S = 5.0
RESTART_BACKOFF_S = 5.0
BLOB_LOCATION = "/_blob/"  # internal: the app's X-Accel-Redirect target
# lesson types that can run script (file_response.is_active_type: HTML, XSL, any XML) get this CSP
SANDBOX = "sandbox allow-scripts allow-forms"
GZIP_TYPES = ("text/plain", "text/css", "text/xml", "application/javascript", "application/json", "image/svg+xml",
              "application/xml", "application/xhtml+xml", "text/vtt", "text/csv")
# routes whose bodies are files (hand-ins, uploads, a roster): limited by max_upload_mb
UPLOAD_ROUTES = r"^/api/v1/(uploads|roster|assignments/[0-9]+/submissions)$"


class FrontError(ConfigError):
    """The front cannot run: nginx missing, its configuration refused, it exited."""

    code = "front"


@dataclass(frozen=True)
class FrontPaths:
    """Where the front keeps its files, all inside ``<data>/run`` (0700)."""

    run: Path

    @classmethod
    def of(cls, data_dir: Path) -> "FrontPaths":
        return cls(Path(data_dir).resolve() / RUN_DIR)

    @property
    def conf(self) -> Path:
        return self.run / "nginx.conf"

    @property
    def socket(self) -> Path:
        return self.run / "app.sock"

    @property
    def public(self) -> Path:
        return self.run / "public"

    @property
    def temp(self) -> Path:
        return self.run / "nginx-tmp"

    @property
    def error_log(self) -> Path:
        return self.run / "nginx-error.log"

    @property
    def output(self) -> Path:
        return self.run / "nginx.out"


def nginx_binary() -> str:
    """The nginx program, or FrontError saying what to install."""
    found = shutil.which("nginx") or next((p for p in NGINX_PATHS if os.access(p, os.X_OK)), None)
    if not found:
        raise FrontError("未安装 nginx：请运行 apt-get install nginx（或设置 front=none 仅供开发）",
                         "nginx is not installed: run apt-get install nginx (or set front=none, for development only)")
    return found


def _json_error(code: str, zh: str, en: str) -> str:
    # one line of JSON in a single-quoted nginx string: no single quotes inside
    return ('{"error": {"code": "%s", "message": "%s", "message_en": "%s"}}' % (code, zh, en)).replace("'", "")


def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def nginx_config(cfg: EdgeConfig, paths: FrontPaths, content_root: Path) -> str:
    """The nginx configuration for ``cfg`` (a pure function of the settings and paths)."""
    content = Path(content_root).resolve()
    t = cfg.request_timeout_s
    rate = max(1, cfg.login_rate_per_min)
    burst = max(5, rate // 3)
    # nginx run as root switches its workers to "nobody", who may not read a 0700 data folder
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    tmp = paths.temp
    too_many = _json_error("too_many_logins", "登录尝试太频繁，请一分钟后再试",
                           "too many login attempts from this device; try again in a minute")
    too_large = _json_error("too_large", "提交的内容太大", "request body is too large")
    starting = _json_error("unavailable", "设备正在启动或繁忙，请稍后再试", "the appliance is starting or busy; try again shortly")
    proxy = "proxy_pass http://app;"
    live = (Path(cfg.data_dir) / "live").resolve()  # edge_agent.live.store.LAN_DIR
    return f"""# Generated by school-edge from its settings at every start; edits here are overwritten.
{user}worker_processes auto;
worker_rlimit_nofile 4096;
pid "{paths.run}/nginx.pid";
error_log "{paths.error_log}" error;  # not every spooled body or refused login
events {{ worker_connections 1024; }}  # 300 slow clients and a class, each proxied request using two
http {{
    include {MIME_TYPES};
    # types Debian's list lacks that lessons use (the same as Python's mimetypes gives the catalogue)
    types {{ text/vtt vtt; audio/wav wav; audio/ogg oga opus; audio/flac flac; application/epub+zip epub; text/javascript mjs; }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/plain text/css text/xml text/vtt application/javascript image/svg+xml;
    access_log off;
    server_tokens off;
    sendfile on;
    # open files and the public links' targets stay open/known for a while: lesson assets are
    # small and fetched by a whole class; a quarantined blob or a removed link may still be
    # sent for up to open_file_cache_valid after the change
    open_file_cache max=4096 inactive=60s;
    open_file_cache_valid {OPEN_FILE_CACHE_VALID_S}s;
    open_file_cache_errors off;
    max_ranges 1;  # several ranges at once: the whole file, as RFC 9110 allows (no multipart bodies)
    tcp_nopush on;
    tcp_nodelay on;
    # slow clients are cut off; they never reach the app
    client_header_timeout {t}s;
    client_body_timeout {t}s;
    send_timeout {t}s;
    keepalive_timeout {t}s;
    reset_timedout_connection on;
    client_header_buffer_size 1k;
    large_client_header_buffers 4 8k;
    # bodies past 16 KiB are spooled to disk by nginx, the app gets them whole and never waits on a client
    client_body_buffer_size 16k;
    client_max_body_size {cfg.json_body_kb}k;
    client_body_temp_path "{tmp}/body" 1 2;
    proxy_temp_path "{tmp}/proxy" 1 2;
    fastcgi_temp_path "{tmp}/fastcgi";
    uwsgi_temp_path "{tmp}/uwsgi";
    scgi_temp_path "{tmp}/scgi";
    gzip on;
    gzip_comp_level 5;
    gzip_min_length 1024;
    gzip_vary on;
    gzip_proxied any;
    gzip_types {' '.join(GZIP_TYPES)};
    map $request_method $login_client {{ POST $binary_remote_addr; default ""; }}
    limit_req_zone $login_client zone=login:1m rate={rate}r/m;
    limit_req_status 429;
    limit_req_log_level notice;
    map $sent_http_content_type $active_sandbox {{
        default "";
        "~*^(text/html|text/xsl|[^;]*[/+]xml)" "{SANDBOX}";
    }}
    upstream app {{
        server "unix:{paths.socket}" max_fails=0;
        keepalive 16;
        # below gunicorn's keep-alive (5 s): nginx never sends a request on a connection gunicorn is closing
        keepalive_timeout 4s;
    }}
    server {{
        listen {_listen(cfg.host, cfg.port)} default_server;
        server_name _;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_request_buffering on;
        proxy_buffering on;
        proxy_read_timeout 120s;
        proxy_send_timeout 120s;
        error_page 413 @too_large;
        error_page 429 @too_many;
        error_page 502 503 504 @unavailable;

        location / {{ {proxy} }}
        location ^~ /api/v1/login/ {{
            limit_req zone=login burst={burst} nodelay;
            {proxy}
        }}
        # (regex locations are tried in order: the content files, the busiest, first)
        # content-addressed files nobody needs to be asked about: nginx sends them from the public
        # links (library.public_links); anything else (an answer key, a missing or quarantined blob) goes to the app
        location ~ "^/content/(?<blob_dir>[0-9a-f]{{2}})(?<blob_rest>[0-9a-f]{{62}})/[^/]+$" {{
            # alias, not try_files: the URI keeps <name>, whose extension gives the type
            alias "{paths.public}/$blob_dir/$blob_rest";
            error_page 404 = @app;
            etag on;
            add_header Cache-Control "public, max-age=31536000, immutable" always;
            add_header X-Content-Type-Options nosniff always;
            add_header Content-Security-Policy $active_sandbox always;
        }}
        location ~ "{UPLOAD_ROUTES}" {{
            client_max_body_size {cfg.max_upload_mb}m;
            {proxy}
        }}
        # the app's X-Accel-Redirect: it chose the file and the headers, nginx sends the bytes
        location ^~ {BLOB_LOCATION} {{
            internal;
            alias "{content}/";
            etag on;
            add_header X-Content-Type-Options nosniff always;
            add_header Content-Security-Policy $active_sandbox always;
        }}
        # live lessons (专递课堂): files the puller verified, written atomically (edge_agent.live.store);
        # playlists and status change every segment, segments never do
        location ~ "^/live/(?<live_path>([A-Za-z0-9][A-Za-z0-9_.-]*/)?([a-z0-9]+/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*[.](m3u8|json))$" {{
            alias "{live}/$live_path";
            add_header Cache-Control "no-cache" always;
            add_header X-Content-Type-Options nosniff always;
        }}
        location /live/ {{
            alias "{live}/";
            add_header Cache-Control "public, max-age=3600" always;
            add_header X-Content-Type-Options nosniff always;
        }}
        location @app {{ {proxy} }}
        location @too_many {{
            default_type application/json;
            add_header Retry-After 60 always;
            return 429 '{too_many}';
        }}
        location @too_large {{
            default_type application/json;
            return 413 '{too_large}';
        }}
        location @unavailable {{
            default_type application/json;
            add_header Retry-After 2 always;
            return 503 '{starting}';
        }}
    }}
}}
"""


def prepare(cfg: EdgeConfig, content_root: Path) -> FrontPaths:
    """Create ``run/`` (0700), write the configuration and have nginx check it; FrontError if refused."""
    nginx = nginx_binary()
    paths = FrontPaths.of(cfg.data_dir)
    paths.run.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(paths.run, 0o700)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (paths.temp / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.socket.unlink(missing_ok=True)  # left by a killed server: gunicorn binds afresh
    tmp_conf = paths.conf.with_suffix(".conf.new")
    tmp_conf.write_text(nginx_config(cfg, paths, content_root), "utf-8")
    os.replace(tmp_conf, paths.conf)
    check = subprocess.run([nginx, *_args(paths), "-t", "-q"], capture_output=True, text=True)
    if check.returncode != 0:
        detail = (check.stderr or check.stdout).strip().splitlines()
        raise FrontError(f"nginx 拒绝了生成的配置 {paths.conf}：{detail[-1] if detail else ''}",
                         f"nginx refused the generated configuration {paths.conf}: {detail[-1] if detail else ''}")
    return paths


def _args(paths: FrontPaths) -> list[str]:
    # -e: nginx opens its error log before reading the configuration; keep it in run/ too
    return ["-p", str(paths.run), "-c", str(paths.conf), "-e", str(paths.error_log)]


class Front:
    """nginx as a supervised child: started once gunicorn listens, restarted if it dies, stopped with it."""

    def __init__(self, cfg: EdgeConfig, paths: FrontPaths) -> None:
        self.cfg = cfg
        self.paths = paths
        self.process: SupervisedProcess | None = None
        self.restarts = 0
        self._next_try = 0.0
        self._supervising = False  # between start() and stop(): keep nginx running

    def start(self) -> None:
        """Start nginx and wait until it accepts connections; FrontError quoting its log if it exits."""
        self._supervising = True
        self.process = SupervisedProcess([nginx_binary(), *_args(self.paths), "-g", "daemon off;"],
                                         log=self.paths.output)
        process = self.process

        def listening() -> bool:
            if not process.running():
                tail = self.paths.error_log.read_text("utf-8", "replace").strip().splitlines()[-1:] \
                    if self.paths.error_log.exists() else []
                raise FrontError(f"nginx 启动后退出：{' '.join(tail)}", f"nginx exited at start: {' '.join(tail)}")
            return _accepts(self.cfg.host, self.cfg.port)

        try:
            wait_until(listening, START_TIMEOUT_S, "nginx to listen")
        except TimeoutError as exc:
            process.stop(grace_s=STOP_GRACE_S)
            raise FrontError("nginx 没有开始监听", f"nginx did not start listening: {exc}") from None

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def check(self) -> None:
        """Called about once a second by the server's master: start nginx again if it died
        (at most every ``RESTART_BACKOFF_S``, so a port taken meanwhile is not a busy loop)."""
        if not self._supervising or (self.process is not None and self.process.running()) \
                or time.monotonic() < self._next_try:
            return
        self.restarts += 1
        self._next_try = time.monotonic() + RESTART_BACKOFF_S
        if self.process is not None:
            log.warning("nginx exited (%s); starting it again", self.process.returncode)
            self.process.stop(grace_s=0)  # reap what may be left of its group
            self.process = None
        self.start()

    def stop(self) -> None:
        """SIGTERM nginx's process group (SIGKILL after a grace); a no-op if it is not running."""
        self._supervising = False
        process, self.process = self.process, None
        if process is not None:
            process.stop(grace_s=STOP_GRACE_S)


def _accepts(host: str, port: int) -> bool:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    try:
        with socket.create_connection((shown, port), timeout=0.5):
            return True
    except OSError:
        return False

