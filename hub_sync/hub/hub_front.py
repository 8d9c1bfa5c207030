"""The hub's front: Debian's nginx before ``hub serve``'s gunicorn, as the appliance has.

``hub_sync.core.nginx_front`` does the work; this is the hub's description of it:

* published files (``/content/<sha256>`` and ``/tuf/targets/…/<sha256>.<name>``) are sent
  by nginx straight from the published folder (``H/published/ab/cdef…``, the rsync
  module's hard links: only files a kept TUF moment lists); a hash not there goes to
  the app, which answers 404 as before;
* request bodies: at most ``JSON_BODY_KB`` everywhere (enrollment, subscriptions,
  polls, the console's forms), ``MAX_REQUEST_MB`` (the app's own limit) on the routes
  that carry usage batches, device messages, teachers' offered uploads and live lessons;
* the console's ``/console/login``: at most ``LOGIN_RATE_PER_MIN`` POSTs a minute per
  client address (429 with a JSON body), before the app's own per-account throttling;
* slow clients are cut off after ``REQUEST_TIMEOUT_S``; errors nginx gives itself
  (413, 429, 502-504) are JSON bodies in Chinese and English, like the app's.

The configuration is generated into ``H/run/nginx.conf`` at every start; gunicorn
listens on ``H/run/app.sock`` (0600).
"""

from __future__ import annotations

from pathlib import Path

from hub_sync.core.nginx_front import FileRoute, FrontPaths, FrontSpec, find_nginx, render, write_config
from hub_sync.hub.app import MAX_REQUEST_MB
from hub_sync.hub.offer_api import OFFER_MAX_MB
from hub_sync.hub.rsync_daemon import PUBLISHED_DIR

REQUEST_TIMEOUT_S = 30
JSON_BODY_KB = 1024
LOGIN_RATE_PER_MIN = 20
LOGIN_PREFIXES = ("/console/login",)
# routes whose bodies are batches or files: usage, device messages (transferred spaces), live lessons,
# and teachers' offered files (one file per request, up to the offer API's own limit)
BODY_ROUTES = ((r"^/api/v1/hub/offers/files/", OFFER_MAX_MB),
               (r"^/api/v1/hub/(usage|downlink|offers|uploads)(/|$)", MAX_REQUEST_MB),
               (r"^/(live|api/v1/hub/live)/", MAX_REQUEST_MB),
               (r"^/api/v1/province/", MAX_REQUEST_MB))  # a county's relay bundles (relay_bundle_kb, up to 4 MB)
_HASH = "(?<blob_dir>[0-9a-f]{2})(?<blob_rest>[0-9a-f]{62})"


def hub_front_spec(data_dir: Path, host: str, port: int) -> FrontSpec:
    """The hub front's description for a hub in ``data_dir`` listening on ``host:port``."""
    published = Path(data_dir).resolve() / PUBLISHED_DIR
    alias = f"{published}/$blob_dir/$blob_rest"
    cache = "public, max-age=31536000"
    return FrontSpec(
        host=host, port=port, request_timeout_s=REQUEST_TIMEOUT_S, json_body_kb=JSON_BODY_KB,
        body_routes=BODY_ROUTES, login_prefixes=LOGIN_PREFIXES, login_rate_per_min=LOGIN_RATE_PER_MIN,
        files=(FileRoute(f"^/content/{_HASH}$", alias, cache, octet_stream=True),
               FileRoute(f"^/tuf/targets/(.+/)?{_HASH}[.][^/]+$", alias, cache, octet_stream=True)),
        busy_zh="县级平台正在启动或繁忙，请稍后再试", busy_en="the hub is starting or busy; try again shortly",
        comment="school-edge hub serve",
    )


def prepare_hub_front(data_dir: Path, host: str, port: int) -> tuple[str, FrontPaths]:
    """(nginx, its paths) with the configuration written and checked; FrontError (one line) without nginx."""
    nginx = find_nginx("或用 hub serve --no-front 仅供开发", "or pass hub serve --no-front, for development only")
    paths = FrontPaths.of(data_dir)
    write_config(nginx, paths, render(hub_front_spec(data_dir, host, port), paths))
    return nginx, paths
