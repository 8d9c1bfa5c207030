"""Starting and stopping the real thing for a benchmark or a script, through
``hub_sync.core.processes`` (own process group, output to a file, polling until it
answers, SIGTERM then SIGKILL of the whole group): ``school-edge edge serve``, the
hub under ``hub serve`` or a bare gunicorn, any other server. A server that does
not come up ends the script with one line and the end of what it printed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from hub_sync.core.errors import ProcessError
from hub_sync.core.processes import START_TIMEOUT_S, SupervisedProcess, free_port

__all__ = ["free_port", "start", "start_edge", "start_hub", "start_hub_gunicorn", "stop"]

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "edge_agent.cli"]


def start(argv: Sequence[str], url: str, timeout_s: float = START_TIMEOUT_S, env: dict | None = None) -> SupervisedProcess:
    """Run ``argv`` from the repository and wait until ``url`` answers; exit the script if it does not."""
    server = SupervisedProcess(argv, cwd=REPO, env={**os.environ, **(env or {})})
    try:
        return server.wait_http(url, timeout_s)
    except ProcessError as exc:
        raise SystemExit(f"{exc}\n{exc.details.get('output', '')}") from None


def start_edge(data_dir: Path, port: int, timeout_s: float = START_TIMEOUT_S) -> SupervisedProcess:
    """``school-edge edge serve`` on ``data_dir`` and ``port`` (no LAN announcement), answering."""
    return start([*CLI, "edge", "serve", "--data", str(data_dir), "--port", str(port), "--no-announce"],
                 f"http://127.0.0.1:{port}/api/v1/status", timeout_s)


def start_hub(hub_dir: Path, port: int, rsync_port: int, timeout_s: float = START_TIMEOUT_S) -> SupervisedProcess:
    """``school-edge hub serve`` (HTTP and its rsync daemon) on loopback, answering."""
    return start([*CLI, "hub", "serve", "--data", str(hub_dir), "--port", str(port), "--rsync-port", str(rsync_port)],
                 f"http://127.0.0.1:{port}/api/v1/hub/status", timeout_s)


def start_hub_gunicorn(hub_dir: Path, port: int, timeout_s: float = START_TIMEOUT_S) -> SupervisedProcess:
    """The hub's HTTP API alone under gunicorn (the documented ``hub_sync.hub.wsgi`` entry), answering."""
    return start([sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
                  "hub_sync.hub.wsgi:app_from_env()"], f"http://127.0.0.1:{port}/api/v1/hub/status", timeout_s,
                 env={"HUB_DATA": str(hub_dir)})


def stop(server: SupervisedProcess) -> None:
    """SIGTERM the server's process group, SIGKILL what is left of it after the grace."""
    server.stop()
