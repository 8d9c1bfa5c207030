"""Pupils' hands, questions and poll answers waiting to go up to the central teacher.

``queue`` signs each message with the device key (a ``live-interaction`` envelope,
``hub_sync.formats.live_interaction``) and stores it with the device's next sequence
number in one transaction: a message is either queued with its seq or not at all, and a
seq is never used twice (the counter survives pruning). The link job
(``edge_agent.sync.live_link``) sends what waits, oldest first, and marks what the hub
says it holds; a resend of the same envelope (the answer was lost, the appliance was
killed between send and mark) is stored once by the hub, which keys on (device, seq).

The open poll of each lesson, as the hub last signed it, is kept here too (``set_poll``),
so a tablet can answer it while the link is down.
"""

from __future__ import annotations

import base64
import json
import time

import sqlite_utils

from hub_sync.core.errors import FormatError
from hub_sync.core.keys import load_signer
from hub_sync.core.migrations import Migrations
from hub_sync.core.sqlite_db import transaction
from hub_sync.formats.envelope import canonical_json, seal
from hub_sync.formats.live_interaction import INTERACTION_KIND, check_interaction

from edge_agent.const import DEVICE_KEY_FILE
from edge_agent.errors import BadRequestError
from edge_agent.spaces.errors import LockedError

PER_PUPIL_PER_MINUTE = 6     # a pupil tapping "raise hand" ten times sends one or two, not ten
KEEP_DELIVERED_S = 2 * 86400  # delivered messages stay a while for the pupil's own list

migrations = Migrations("edge_live_outbox")


@migrations
def m001_live_outbox(db: sqlite_utils.Database) -> None:
    db.execute("create table live_outbox (seq integer primary key, lesson text not null, kind text not null,"
               " person_id integer not null, summary text not null, envelope text not null, queued_at real not null,"
               " delivered_at real)")
    db.execute("create index live_outbox_pending on live_outbox (delivered_at, seq)")
    db.execute("create table live_outbox_state (key text primary key, value text not null)")
    db.execute("create table live_polls (lesson text primary key, poll text not null, fetched_at real not null)")


def last_seq(db: sqlite_utils.Database) -> int:
    row = db.execute("select value from live_outbox_state where key = 'last_seq'").fetchone()
    return int(row[0]) if row else 0


def queue(appliance, person, lesson: str, kind: str, text: str | None = None, poll: str | None = None,
          option: int | None = None) -> dict:
    """Queue one signed message of ``person`` (a logged-in pupil) for ``lesson``; returns {seq, state}.
    Raises BadRequestError for a malformed one and LockedError past the per-minute limit; either
    queues nothing."""
    db = appliance.db
    payload = {"device": appliance.device_id, "seq": 1, "lesson": lesson, "kind": kind, "pupil": person.name, "person": person.id,
               "at": time.time(), **({"text": text} if text is not None else {}),
               **({"poll": poll, "option": option} if kind == "answer" else {})}
    try:
        check_interaction(payload)  # before anything is stored or signed
    except FormatError as exc:  # the pupil's request, not the link, is wrong: a 400 of the appliance
        raise BadRequestError(exc.zh, exc.en) from exc
    signer = load_signer(appliance.data_dir / DEVICE_KEY_FILE)
    with transaction(db):
        recent = db.execute("select count(*) from live_outbox where person_id = ? and queued_at > ?",
                            [person.id, payload["at"] - 60]).fetchone()[0]
        if recent >= PER_PUPIL_PER_MINUTE:
            raise LockedError("发得太快了，请稍后再试", "too many messages in a minute; try again shortly", retry_after_s=30)
        seq = last_seq(db) + 1
        payload["seq"] = seq
        envelope = seal(INTERACTION_KIND, canonical_json(payload), signer).decode("utf-8")
        summary = json.dumps({k: payload[k] for k in ("text", "poll", "option") if k in payload}, ensure_ascii=False)
        db.execute("insert into live_outbox values (?, ?, ?, ?, ?, ?, ?, null)",
                   [seq, lesson, kind, person.id, summary, envelope, payload["at"]])
        db.execute("insert or replace into live_outbox_state values ('last_seq', ?)", [str(seq)])
    return {"seq": seq, "state": "queued"}


def pending(db: sqlite_utils.Database, limit: int = 200) -> list[tuple[int, str]]:
    """(seq, envelope) of what waits, oldest first."""
    return db.execute("select seq, envelope from live_outbox where delivered_at is null order by seq limit ?", [limit]).fetchall()


def pending_count(db: sqlite_utils.Database) -> int:
    return db.execute("select count(*) from live_outbox where delivered_at is null").fetchone()[0]


def mark_held(db: sqlite_utils.Database, held: int) -> int:
    """The hub holds every message up to ``held``: mark them delivered, forget old ones; returns how many were marked."""
    now = time.time()
    with transaction(db):
        marked = db.execute("update live_outbox set delivered_at = ? where seq <= ? and delivered_at is null", [now, held]).rowcount
        db.execute("delete from live_outbox where delivered_at is not null and delivered_at < ?", [now - KEEP_DELIVERED_S])
    return marked


def mine(db: sqlite_utils.Database, person_id: int, lesson: str) -> list[dict]:
    """A pupil's own messages for ``lesson``, oldest first, each queued or delivered."""
    return [{"seq": seq, "kind": kind, **json.loads(summary), "queued_at": at, "state": "delivered" if done else "queued"}
            for seq, kind, summary, at, done in db.execute(
                "select seq, kind, summary, queued_at, delivered_at from live_outbox where person_id = ? and lesson = ?"
                " order by seq", [person_id, lesson])]


def set_poll(db: sqlite_utils.Database, lesson: str, poll: dict | None) -> None:
    """Remember the lesson's open poll as the hub signed it (None: no poll open)."""
    with transaction(db):
        if poll is None:
            db.execute("delete from live_polls where lesson = ?", [lesson])
        else:
            db.execute("insert or replace into live_polls values (?, ?, ?)", [lesson, json.dumps(poll, ensure_ascii=False), time.time()])


def current_poll(db: sqlite_utils.Database, lesson: str) -> dict | None:
    row = db.execute("select poll from live_polls where lesson = ?", [lesson]).fetchone()
    return json.loads(row[0]) if row else None


def status(db: sqlite_utils.Database) -> dict:
    """For ``edge status``: pupils' live-lesson messages not yet held by the hub."""
    return {"live_messages_waiting": pending_count(db)}


def renumber_after(appliance, held: int) -> int:
    """The hub holds only up to ``held`` but this appliance has numbered past it as delivered (a
    hub restored from an older backup): number every message still here after ``held`` again,
    from ``held + 1`` in their order, signed anew and waiting, so none waits behind a gap forever.
    None of them is at the hub (it stores without gaps), so none arrives twice. Returns how many."""
    db = appliance.db
    signer = load_signer(appliance.data_dir / DEVICE_KEY_FILE)
    with transaction(db):
        rows = db.execute("select seq, lesson, kind, person_id, summary, envelope, queued_at from live_outbox"
                          " where seq > ? order by seq", [held]).fetchall()
        db.execute("delete from live_outbox where seq > ?", [held])
        for n, (_seq, lesson, kind, person_id, summary, envelope, queued_at) in enumerate(rows, held + 1):
            payload = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
            payload["seq"] = n
            resigned = seal(INTERACTION_KIND, canonical_json(payload), signer).decode("utf-8")
            db.execute("insert into live_outbox values (?, ?, ?, ?, ?, ?, ?, null)",
                       [n, lesson, kind, person_id, summary, resigned, queued_at])
        db.execute("insert or replace into live_outbox_state values ('last_seq', ?)", [str(held + len(rows))])
    return len(rows)
