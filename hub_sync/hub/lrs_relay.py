"""Relaying the usage the hub ingested to the county's LRS as xAPI statements.

At least once, never out of order per device, idempotent:

* each device has a cursor (``lrs_cursor.relayed_seq``): the last of its events the
  LRS accepted. A pass reads, device by device, the events after the cursor up to
  the device's contiguous sequence (``ingest``: events are stored without gaps),
  ``hub_lrs_batch`` statements per ``POST statements``;
* a batch's cursors move forward in one transaction, only after the LRS accepted
  the batch (``LrsClient.post``). A pass cut anywhere (the LRS down, the hub
  stopped, a crash) sends that batch again next time;
* a statement sent twice is the same statement with the same id
  (``hub_sync.formats.xapi.statement_id``: device, sequence number, event), which
  an LRS stores once.

One pass at a time per hub (a lock file), whether from ``hub lrs push`` or the job
``relay_job`` that ``hub serve`` runs every ``hub_lrs_interval_min`` minutes. All
SQL of the relay is here; ``Hub.open`` applies the tables' migrations.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Protocol

from hub_sync.core.errors import Problem
from hub_sync.formats.usage_batch import UsageEvent
from hub_sync.formats.xapi import statement
from hub_sync.hub.pass_lock import PassLock
from hub_sync.hub.database import Database, transaction
from hub_sync.hub.hub_settings import HubSettings
from hub_sync.hub.lrs_client import LrsClient, LrsError, read_credentials

log = logging.getLogger(__name__)

STOP_BUDGET_S = 3.0


class HubFolder(Protocol):
    """What the relay needs of an opened ``Hub`` (hub.py lists this module's migrations,
    so this module does not import it)."""

    data_dir: Path

    @property
    def db(self) -> Database: ...


@dataclass(frozen=True)
class RelayStatus:
    url: str
    pending: int
    sent_total: int
    last_pass_at: float | None
    last_ok_at: float | None
    last_error: str
    last_error_at: float | None


class LrsRelay:
    """The relay of one opened hub."""

    def __init__(self, hub: HubFolder, stop: threading.Event | None = None) -> None:
        self.hub = hub
        self.stop = stop or threading.Event()

    @property
    def db(self) -> Database:
        return self.hub.db

    # -- what is left --------------------------------------------------------------
    def pending(self) -> int:
        """Events stored at the hub and not yet accepted by the LRS."""
        row = self.db.execute(
            "select coalesce(sum(s.contiguous_seq - coalesce(c.relayed_seq, 0)), 0) from device_usage_state s"
            " left join lrs_cursor c on c.device_id = s.device_id where s.contiguous_seq > coalesce(c.relayed_seq, 0)"
        ).fetchone()
        return int(row[0])

    def cursors(self) -> dict[str, int]:
        return dict(self.db.execute("select device_id, relayed_seq from lrs_cursor").fetchall())

    def status(self) -> RelayStatus:
        row = self.db.execute("select last_pass_at, last_ok_at, last_error, last_error_at, sent_total"
                              " from lrs_status where id = 1").fetchone()
        return RelayStatus(HubSettings(self.db).get("hub_lrs_url"), self.pending(), row[4], row[0], row[1], row[2], row[3])

    def next_batch(self, limit: int) -> tuple[list[dict], dict[str, int]]:
        """Up to ``limit`` statements after the cursors, device by device in sequence order,
        and the cursor each included device moves to once they are accepted."""
        out: list[dict] = []
        moves: dict[str, int] = {}
        devices = self.db.execute(
            "select s.device_id, s.contiguous_seq, coalesce(c.relayed_seq, 0), coalesce(d.school_code, '')"
            " from device_usage_state s left join lrs_cursor c on c.device_id = s.device_id"
            " left join devices d on d.device_id = s.device_id"
            " where s.contiguous_seq > coalesce(c.relayed_seq, 0) order by s.device_id").fetchall()
        for device_id, contiguous, relayed, school_code in devices:
            if len(out) >= limit:
                break
            rows = self.db.execute(
                "select seq, ts, actor, verb, object, data from usage_events where device_id = ? and seq > ?"
                " and seq <= ? order by seq limit ?", [device_id, relayed, contiguous, limit - len(out)]).fetchall()
            for seq, ts, actor, verb, obj, data in rows:
                out.append(statement(UsageEvent(seq, ts, actor, verb, obj, json.loads(data)), device_id, school_code))
            if rows:
                moves[device_id] = rows[-1][0]
        return out, moves

    # -- a pass --------------------------------------------------------------------------
    def push(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Send everything pending, batch by batch; returns how many statements the LRS accepted.
        LrsError (cursors where the last accepted batch left them) if the LRS is not set, unusable
        or did not accept a batch after its retries; another pass running: LrsError, nothing sent."""
        settings = HubSettings(self.db)
        url = settings.get("hub_lrs_url")
        if not url:
            raise LrsError("未设置学习记录库地址：请运行 school-edge hub config set hub_lrs_url URL",
                           "no LRS set: run 'school-edge hub config set hub_lrs_url URL' first")
        with self._locked():
            self._note(pass_at=time.time())
            sent = 0
            try:
                credentials = read_credentials(self.hub.data_dir)
                total = self.pending()
                with LrsClient(url, credentials, timeout_s=settings.get("hub_lrs_timeout_s"),
                               attempts=settings.get("hub_lrs_attempts"), stop=self.stop) as client:
                    while not self.stop.is_set():
                        batch, moves = self.next_batch(settings.get("hub_lrs_batch"))
                        if not batch:
                            break
                        client.post(batch)
                        self._advance(moves, len(batch))
                        sent += len(batch)
                        if progress:
                            progress(sent, total)
            except LrsError as exc:
                self._note(error=str(exc))
                raise
            self._note(ok=True)
            return sent

    def _advance(self, moves: dict[str, int], accepted: int) -> None:
        now = time.time()
        with transaction(self.db):  # every cursor of the batch, and the count, or none of them
            for device_id, seq in moves.items():
                self.db.execute("insert into lrs_cursor (device_id, relayed_seq, updated_at) values (?, ?, ?)"
                                " on conflict (device_id) do update set relayed_seq = case when lrs_cursor.relayed_seq > excluded.relayed_seq"
                                " then lrs_cursor.relayed_seq else excluded.relayed_seq end,"
                                " updated_at = excluded.updated_at", [device_id, seq, now])
            self.db.execute("update lrs_status set sent_total = sent_total + ? where id = 1", [accepted])

    def _note(self, pass_at: float | None = None, ok: bool = False, error: str = "") -> None:
        now = time.time()
        with transaction(self.db):
            if pass_at is not None:
                self.db.execute("update lrs_status set last_pass_at = ? where id = 1", [pass_at])
            if ok:
                self.db.execute("update lrs_status set last_ok_at = ?, last_error = '' where id = 1", [now])
            if error:
                self.db.execute("update lrs_status set last_error = ?, last_error_at = ? where id = 1", [error, now])

    def _locked(self):
        return PassLock(self.hub, "lrs-relay", LrsError("另一个转发正在进行（hub serve 的定时任务或另一个 hub lrs push），请稍后再试", "another relay pass is running (hub serve's job or another 'hub lrs push'); try again later"))


def relay_job(hub: HubFolder) -> Callable[[], None]:
    """A background job of ``hub serve``: a relay pass ``hub_lrs_first_pass_s`` seconds after the
    start, then every ``hub_lrs_interval_min`` minutes (nothing while ``hub_lrs_url`` is unset);
    returns the function that stops it."""
    from apscheduler.schedulers.background import BackgroundScheduler

    stop = threading.Event()
    settings = HubSettings(hub.db)
    interval_min, first_pass_s = settings.get("hub_lrs_interval_min"), settings.get("hub_lrs_first_pass_s")

    def tick() -> None:
        relay = LrsRelay(hub, stop)
        if not HubSettings(hub.db).get("hub_lrs_url"):
            return
        try:
            sent = relay.push()
            if sent:
                log.info("LRS relay: %d statement(s) accepted", sent)
        except Problem as exc:
            log.warning("LRS relay: %s", exc.en)
        except Exception:  # a background job must never die: log and try at the next interval
            log.exception("LRS relay failed")

    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(tick, "interval", minutes=interval_min, id="lrs-relay", max_instances=1, coalesce=True,
                      next_run_time=datetime.now() + timedelta(seconds=first_pass_s))
    scheduler.start()

    def stop_job() -> None:
        stop.set()  # a pass in its backoff returns at once; one waiting on the LRS within its timeout
        stopper = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, name="stop-lrs-relay", daemon=True)
        stopper.start()
        stopper.join(STOP_BUDGET_S)

    return stop_job
