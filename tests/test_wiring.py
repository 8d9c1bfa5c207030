"""Every documented way to start the appliance and the hub serves every route.

The factories register their blueprints themselves (``edge_agent.app``,
``hub_sync.hub.app``) and ``edge_agent.wiring`` adds the areas of the packages
above; nothing joins a list because another module happened to be imported.
So a fresh interpreter that imports only an entry point gets the whole app, and
the CLI and the gunicorn entries answer on the same routes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hub_sync.core.processes import SupervisedProcess, free_port

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

RULES_OF = """
import json, sys
from flask import Flask
kind = sys.argv[1]
if kind == "edge-wsgi":
    from edge_agent.wsgi import app_from_env
    app = app_from_env()
elif kind == "edge-served":
    from edge_agent.config import EdgeConfig
    from edge_agent.wiring import create_served_app
    app = create_served_app(EdgeConfig.load(sys.argv[2]))
elif kind == "hub-wsgi":
    from hub_sync.hub.wsgi import app_from_env
    app = app_from_env()
print(json.dumps(sorted(f"{sorted(r.methods - {'HEAD', 'OPTIONS'})} {r.rule}" for r in app.url_map.iter_rules())))
"""

# One route of each area that a served appliance must answer (a miss is a 404 with the
# generic body); the method and the statuses that prove the route is there.
EDGE_PROBES = [
    ("GET", "/api/v1/status", {200}),  # library: status
    ("GET", "/api/v1/resources", {200}),  # library: catalogue
    ("GET", "/", {200}),  # pages: home
    ("GET", "/student/login", {200}),  # pages: student login
    ("GET", "/api/v1/login/classes", {200}),  # spaces API
    ("GET", "/api/v1/channels", {401, 403, 409}),  # pages: channel choice (staff; 409 before provisioning)
    ("GET", "/api/v1/usb", {200, 401, 403}),  # provisioning: the technician's USB endpoints
]
HUB_PROBES = [
    ("GET", "/api/v1/hub/status", {200}),
    ("GET", "/tuf/metadata/timestamp.json", {200}),  # repository
    ("GET", "/api/v1/hub/channels", {200}),
    ("POST", "/api/v1/hub/enroll", {400}),  # garbage body: refused, not missing
    ("POST", "/api/v1/hub/usage", {400}),
    ("POST", "/api/v1/hub/downlink", {400}),
]


def _rules(kind: str, *args: str, env: dict | None = None) -> list[str]:
    out = subprocess.run([sys.executable, "-c", RULES_OF, kind, *args], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _probe(base: str, probes) -> dict[str, int]:
    seen = {}
    for method, path, ok in probes:
        response = httpx.request(method, base + path, content=b"not json" if method == "POST" else None, timeout=20)
        seen[path] = response.status_code
        assert response.status_code in ok, f"{method} {path}: {response.status_code} {response.text[:200]}"
    return seen


def _probe_gunicorn(entry: str, env: dict, status_path: str, probes) -> dict[str, int]:
    """Start ``entry`` under plain gunicorn (as a process manager would) and probe it."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
            "--graceful-timeout", "2", entry]
    with SupervisedProcess(argv, cwd=REPO, env={**os.environ, **env}) as server:
        server.wait_http(f"http://127.0.0.1:{port}{status_path}")
        return _probe(f"http://127.0.0.1:{port}", probes)


def _probe_cli(args: list[str], port: int, status_path: str, probes) -> dict[str, int]:
    """Start ``school-edge ARGS`` (as a technician would) and probe it."""
    with SupervisedProcess([sys.executable, "-m", "edge_agent.cli", *args], cwd=REPO) as server:
        server.wait_http(f"http://127.0.0.1:{port}{status_path}")
        return _probe(f"http://127.0.0.1:{port}", probes)


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    data = tmp_path / "hub"
    subprocess.run([sys.executable, "-m", "edge_agent.cli", "hub", "init", "--data", str(data)], cwd=REPO,
                   check=True, capture_output=True, timeout=120)
    return data


def test_a_fresh_interpreter_importing_only_the_gunicorn_entry_gets_every_appliance_route(tmp_path: Path):
    data = tmp_path / "edge"
    wsgi_rules = _rules("edge-wsgi", env={"SCHOOL_EDGE_DATA": str(data)})
    assert wsgi_rules == _rules("edge-served", str(data))
    for needed in ("/api/v1/usb", "/api/v1/resources", "/api/v1/login/student", "/student/login", "/api/v1/channels"):
        assert any(rule.endswith(" " + needed) for rule in wsgi_rules), needed


def test_a_fresh_interpreter_importing_only_the_hub_gunicorn_entry_gets_every_hub_route(hub_dir: Path):
    rules = _rules("hub-wsgi", env={"HUB_DATA": str(hub_dir)})
    for needed in ("/tuf/metadata/<name>", "/tuf/targets/<path:target>", "/content/<sha>", "/api/v1/hub/enroll",
                   "/api/v1/hub/usage", "/api/v1/hub/downlink", "/api/v1/hub/status"):
        assert any(rule.endswith(" " + needed) for rule in rules), needed


def test_edge_serve_and_the_gunicorn_entry_answer_on_every_area(tmp_path: Path):
    data, port = tmp_path / "edge", free_port()
    from_cli = _probe_cli(["edge", "serve", "--data", str(data), "--port", str(port), "--no-announce"], port,
                          "/api/v1/status", EDGE_PROBES)
    from_gunicorn = _probe_gunicorn("edge_agent.wsgi:app_from_env()", {"SCHOOL_EDGE_DATA": str(data)},
                                    "/api/v1/status", EDGE_PROBES)
    assert from_gunicorn == from_cli


def test_hub_serve_and_the_hub_gunicorn_entry_answer_on_every_area(hub_dir: Path):
    port = free_port()
    from_cli = _probe_cli(["hub", "serve", "--data", str(hub_dir), "--port", str(port), "--rsync-port", "0"], port,
                          "/api/v1/hub/status", HUB_PROBES)
    from_gunicorn = _probe_gunicorn("hub_sync.hub.wsgi:app_from_env()", {"HUB_DATA": str(hub_dir)},
                                    "/api/v1/hub/status", HUB_PROBES)
    assert from_gunicorn == from_cli
