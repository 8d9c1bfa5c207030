"""Debian's nginx in front of gunicorn, for any of our servers (the appliance, the hub).

What every front shares, whatever serves behind it:

* ``FrontPaths``: everything nginx reads and writes in one 0700 folder (``run/``):
  the generated configuration, the app's unix socket (0600, only nginx talks to the
  app), pid, error log, spooled bodies;
* ``FrontSpec`` and ``render``: a small typed description (address, timeouts, body
  limits per route, rate-limited login locations, files nginx sends itself with a
  fallback to the app, the app's ``X-Accel-Redirect`` folder, JSON errors in Chinese
  and English) turned into a configuration (a pure function);
* ``write_config``: write it atomically into ``run/`` and have ``nginx -t`` accept it;
* ``Front``: nginx as a supervised child, started once gunicorn listens, started
  again if it dies (gunicorn's master calls ``check`` about once a second), stopped
  with the server.

``edge_agent.front`` renders the appliance's own configuration (catalogue links,
lesson sandboxing) and uses the rest; ``hub_sync.hub.front`` describes the hub's.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from hub_sync.core.errors import Problem
from hub_sync.core.processes import SupervisedProcess, wait_until

log = logging.getLogger(__name__)

NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
MIME_TYPES = "/etc/nginx/mime.types"
RUN_DIR = "run"
START_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0
RESTART_BACKOFF_S = 5.0
TEMP_SUBDIRS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")


class FrontError(Problem):
    """The front cannot run: nginx missing, its configuration refused, it exited."""

    code = "front"


@dataclass(frozen=True)
class FrontPaths:
    """Where a front keeps its files, all inside ``<data>/run`` (0700)."""

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

    def args(self) -> list[str]:
        """nginx's arguments for this folder (-e: nginx opens its error log before reading the configuration)."""
        return ["-p", str(self.run), "-c", str(self.conf), "-e", str(self.error_log)]


def find_nginx(zh_hint: str, en_hint: str, paths: tuple[str, ...] | None = None) -> str:
    """The nginx program (on PATH or in ``paths``, by default ``NGINX_PATHS``), or FrontError
    saying what to install (and the hint, e.g. how to run without)."""
    paths = NGINX_PATHS if paths is None else paths
    found = shutil.which("nginx") or next((p for p in paths if os.access(p, os.X_OK)), None)
    if not found:
        raise FrontError(f"未安装 nginx：请运行 apt-get install nginx（{zh_hint}）",
                         f"nginx is not installed: run apt-get install nginx ({en_hint})")
    return found


def json_error(code: str, zh: str, en: str) -> str:
    """An error body as one line of JSON for a single-quoted nginx string (no single quotes inside)."""
    return ('{"error": {"code": "%s", "message": "%s", "message_en": "%s"}}' % (code, zh, en)).replace("'", "")


def listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run_as_user() -> str:
    """nginx run as root switches its workers to "nobody", who may not read a 0700 data folder."""
    return f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""


@dataclass(frozen=True)
class FileRoute:
    """Files nginx sends itself: requests matching ``pattern`` (a regex with named captures)
    are answered from ``alias`` (which uses them); a missing file goes to the app."""

    pattern: str
    alias: str
    cache_control: str = "public, max-age=31536000, immutable"
    octet_stream: bool = False  # every file as application/octet-stream, whatever the URI's extension
    headers: tuple[tuple[str, str], ...] = ()  # more add_header lines (name, value)


@dataclass(frozen=True)
class FrontSpec:
    """What a front does, in a few typed fields (``render`` makes the configuration)."""

    host: str
    port: int
    request_timeout_s: int = 30
    json_body_kb: int = 64  # every route
    body_routes: tuple[tuple[str, int], ...] = ()  # (regex, MiB): routes taking files
    login_prefixes: tuple[str, ...] = ()  # POSTs here are rate-limited per client address
    login_rate_per_min: int = 30
    files: tuple[FileRoute, ...] = ()
    accel_location: str = ""  # the app's X-Accel-Redirect target, "" for none
    accel_root: Path | None = None
    accel_headers: tuple[tuple[str, str], ...] = ()
    busy_zh: str = "服务正在启动或繁忙，请稍后再试"
    busy_en: str = "the server is starting or busy; try again shortly"
    proxy_read_timeout_s: int = 120
    comment: str = "school-edge"
    gzip_types: tuple[str, ...] = field(default=("text/plain", "text/css", "application/javascript", "application/json",
                                                 "image/svg+xml", "text/csv"))
    gzip_comp_level: int = 1
    http_extra: tuple[str, ...] = ()  # more lines for the http block (types, caches, maps)
    extra_locations: tuple[str, ...] = ()  # more location blocks, after the ones above


def render(spec: FrontSpec, paths: FrontPaths) -> str:
    """The nginx configuration for ``spec`` (a pure function of the description and paths)."""
    t = spec.request_timeout_s
    rate = max(1, spec.login_rate_per_min)
    burst = max(5, rate // 3)
    tmp = paths.temp
    proxy = "proxy_pass http://app;"
    too_many = json_error("too_many_logins", "登录尝试太频繁，请一分钟后再试", "too many login attempts from this address; try again in a minute")
    too_large = json_error("too_large", "提交的内容太大", "request body is too large")
    busy = json_error("unavailable", spec.busy_zh, spec.busy_en)
    locations = []
    for prefix in spec.login_prefixes:
        locations.append(f"location ^~ {prefix} {{\n            limit_req zone=login burst={burst} nodelay;\n            {proxy}\n        }}")
    for f in spec.files:
        types = "            types { }\n            default_type application/octet-stream;\n" if f.octet_stream else ""
        locations.append(f'location ~ "{f.pattern}" {{\n            alias "{f.alias}";\n{types}            error_page 404 = @app;\n'
                         "            log_not_found off;\n            etag on;\n"
                         + _headers((("Cache-Control", f'"{f.cache_control}"'), ("X-Content-Type-Options", "nosniff"), *f.headers))
                         + "        }")
    for pattern, mb in spec.body_routes:
        locations.append(f'location ~ "{pattern}" {{\n            client_max_body_size {mb}m;\n            {proxy}\n        }}')
    if spec.accel_location and spec.accel_root is not None:
        locations.append(f'location ^~ {spec.accel_location} {{\n            internal;\n            alias "{Path(spec.accel_root).resolve()}/";\n'
                         "            etag on;\n" + _headers((("X-Content-Type-Options", "nosniff"), *spec.accel_headers)) + "        }")
    locations.extend(spec.extra_locations)
    body = "\n        ".join(locations)
    extra = "\n    ".join(spec.http_extra)
    return f"""# Generated by {spec.comment} at every start; edits here are overwritten.
{run_as_user()}worker_processes auto;
worker_rlimit_nofile 4096;
pid "{paths.run}/nginx.pid";
error_log "{paths.error_log}" error;
events {{ worker_connections 1024; }}
http {{
    include {MIME_TYPES};
    default_type application/octet-stream;
    charset utf-8;
    {extra}
    access_log off;
    server_tokens off;
    sendfile on;
    max_ranges 1;
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
    # bodies past 16 KiB are spooled to disk by nginx: the app gets them whole and never waits on a client
    client_body_buffer_size 16k;
    client_max_body_size {spec.json_body_kb}k;
    client_body_temp_path "{tmp}/body" 1 2;
    proxy_temp_path "{tmp}/proxy" 1 2;
    fastcgi_temp_path "{tmp}/fastcgi";
    uwsgi_temp_path "{tmp}/uwsgi";
    scgi_temp_path "{tmp}/scgi";
    gzip on;
    gzip_comp_level {spec.gzip_comp_level};
    gzip_min_length 1024;
    gzip_vary on;
    gzip_proxied any;
    gzip_types {' '.join(spec.gzip_types)};
    map $request_method $login_client {{ POST $binary_remote_addr; default ""; }}
    limit_req_zone $login_client zone=login:1m rate={rate}r/m;
    limit_req_status 429;
    limit_req_log_level notice;
    upstream app {{
        server "unix:{paths.socket}" max_fails=0;
        keepalive 16;
        # below gunicorn's keep-alive (5 s): nginx never sends a request on a connection gunicorn is closing
        keepalive_timeout 4s;
    }}
    server {{
        listen {listen(spec.host, spec.port)} default_server;
        server_name _;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_request_buffering on;
        proxy_buffering on;
        proxy_read_timeout {spec.proxy_read_timeout_s}s;
        proxy_send_timeout {spec.proxy_read_timeout_s}s;
        error_page 413 @too_large;
        error_page 429 @too_many;
        error_page 502 503 504 @unavailable;

        location / {{ {proxy} }}
        {body}
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
            return 503 '{busy}';
        }}
    }}
}}
"""


def _headers(headers) -> str:
    return "".join(f"            add_header {name} {value} always;\n" for name, value in headers)


def write_config(nginx: str, paths: FrontPaths, text: str) -> FrontPaths:
    """Create ``run/`` (0700) and its temp folders, write ``text`` as the configuration
    (write-then-rename) and have ``nginx -t`` check it; FrontError quoting nginx if refused."""
    paths.run.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(paths.run, 0o700)
    for sub in TEMP_SUBDIRS:
        (paths.temp / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.socket.unlink(missing_ok=True)  # left by a killed server: gunicorn binds afresh
    tmp_conf = paths.conf.with_suffix(".conf.new")
    tmp_conf.write_text(text, "utf-8")
    os.replace(tmp_conf, paths.conf)
    check = subprocess.run([nginx, *paths.args(), "-t", "-q"], capture_output=True, text=True)
    if check.returncode != 0:
        detail = (check.stderr or check.stdout).strip().splitlines()
        raise FrontError(f"nginx 拒绝了生成的配置 {paths.conf}：{detail[-1] if detail else ''}",
                         f"nginx refused the generated configuration {paths.conf}: {detail[-1] if detail else ''}")
    return paths


class Front:
    """nginx as a supervised child: started once gunicorn listens, restarted if it dies, stopped with it."""

    def __init__(self, nginx: str, paths: FrontPaths, host: str, port: int) -> None:
        self.nginx = nginx
        self.paths = paths
        self.host = host
        self.port = port
        self.process: SupervisedProcess | None = None
        self.restarts = 0
        self._next_try = 0.0
        self._supervising = False  # between start() and stop(): keep nginx running

    def start(self) -> None:
        """Start nginx and wait until it accepts connections; FrontError quoting its log if it exits."""
        self._supervising = True
        self.process = SupervisedProcess([self.nginx, *self.paths.args(), "-g", "daemon off;"], log=self.paths.output)
        process = self.process

        def listening() -> bool:
            if not process.running():
                tail = self.paths.error_log.read_text("utf-8", "replace").strip().splitlines()[-1:] \
                    if self.paths.error_log.exists() else []
                raise FrontError(f"nginx 启动后退出：{' '.join(tail)}", f"nginx exited at start: {' '.join(tail)}")
            return accepts(self.host, self.port)

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


def accepts(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port`` (a wildcard address: on loopback)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    try:
        with socket.create_connection((shown, port), timeout=0.5):
            return True
    except OSError:
        return False
