"""Helpers for the usage-upload tests: enrollment without provisioning, a real hub
under gunicorn that can be killed with -9, and a realistic classroom day of events."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from hub_sync.hub import Hub
from hub_sync.hub.registry import Registry
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.formats.usage_batch import UsageEvent

from edge_agent.const import DEVICE_KEY_FILE, HUB_ONLINE_KEY_FILE

REPO = Path(__file__).resolve().parent.parent
SCHOOL = "4401020301"
VERBS = ("viewed", "progressed", "completed", "answered", "submitted")


def enroll(appliance, hub: Hub, hub_url: str = "", school_code: str = SCHOOL) -> None:
    """What provisioning will do: device key, school code, registration, pinned hub key."""
    signer = generate_key(appliance.data_dir / DEVICE_KEY_FILE)
    appliance.set_identity(school_code=school_code)
    Registry(hub.db).register(appliance.device_id, school_code, public_key_dict(signer))
    write_hub_key(appliance.data_dir, hub)


def write_hub_key(data_dir: Path, hub: Hub) -> None:
    path = Path(data_dir) / HUB_ONLINE_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(public_key_dict(hub.online_signer)), "utf-8")


def classroom_acts(n: int, seed: int = 1, start_ts: float = 1_760_000_000.0) -> list[tuple]:
    """``n`` plausible acts (actor, verb, object, data, ts) for ``Journal.append_many``."""
    rnd = random.Random(seed)
    acts, ts = [], start_ts
    for i in range(n):
        verb = VERBS[i % len(VERBS)]
        data = {"answered": {"item": f"q{rnd.randint(1, 9)}", "correct": rnd.random() < 0.7},
                "progressed": {"pct": 80}, "completed": {"s": rnd.randint(30, 600)}}.get(verb, {})
        ts += rnd.uniform(1, 60)
        acts.append((f"stu-{SCHOOL}-{rnd.randint(101, 840)}", verb, f"res-yw-g{rnd.randint(1, 6)}-u{rnd.randint(1, 8)}", data, ts))
    return acts


def fill_journal_fast(appliance, n: int, seed: int = 1) -> None:
    """Put ``n`` events in the journal in one transaction (big-batch tests; same table as Journal.append)."""
    from hub_sync.core.sqlite_db import transaction

    with transaction(appliance.db):
        appliance.db.conn.executemany(
            "insert into journal (ts, actor, verb, object, data) values (?, ?, ?, ?, ?)",
            ((ts, a, v, o, json.dumps(d, sort_keys=True, separators=(",", ":"))) for a, v, o, d, ts in classroom_acts(n, seed)))


def events(n: int, first_seq: int = 1, seed: int = 1) -> list[UsageEvent]:
    """``n`` events with contiguous sequence numbers (for pure batch tests)."""
    return [UsageEvent(first_seq + i, ts, a, v, o, d) for i, (a, v, o, d, ts) in enumerate(classroom_acts(n, seed))]


class GunicornHub:
    """The hub app under a real gunicorn on loopback; ``kill()`` is kill -9 of the process group."""

    def __init__(self, hub_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.hub_dir, self.port, self.host = hub_dir, port, host
        self.url = f"http://{host}:{port}"
        self.proc: subprocess.Popen | None = None
        self.log = hub_dir.parent / f"gunicorn-{port}.log"

    def start(self) -> "GunicornHub":
        from conftest import wait_http

        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-b", f"{self.host}:{self.port}", "--workers", "1", "--threads", "4",
                 "--graceful-timeout", "2", "hub_sync.hub.wsgi:app_from_env()"],
                cwd=REPO, env={**os.environ, "HUB_DATA": str(self.hub_dir)}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        wait_http(self.url + "/api/v1/hub/status", proc=self.proc)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(15)
        self.proc = None

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace") if self.log.exists() else ""


class HubInFront:
    """A WSGI server on loopback in front of the real hub app; subclasses' ``__call__``
    decide what reaches the device (tampered, replayed, delayed answers)."""

    def __init__(self, hub) -> None:
        import threading

        from werkzeug.serving import make_server

        from conftest import free_port
        from hub_sync.hub.app import create_hub_app

        self.real = create_hub_app(hub).test_client()
        self.server = make_server("127.0.0.1", free_port(), self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
