"""Down on the appliance: apply what the county sent, once each, in order.

The hub's messages (``hub_sync.hub.downlink``) arrive signed by the hub's online
key, inside a usage acknowledgement, a ``downlink`` envelope answering a poll, or
a file on a stick; every payload is sealed to this device's key. ``apply_answer``
applies the messages after the recorded cursor one by one; each message, its
journal line, its log row and the new cursor are one transaction, so a crash
re-applies nothing and loses nothing. A message that cannot be applied (a roster
change naming a class this school does not have) is rolled back alone, logged as
``failed`` with its reason, and the ones after it go on.

    notice         -> spaces.messages.post_notice
    roster_change  -> spaces.roster_apply.apply_roster_change
    transfer_out   -> the learner is marked transferred out and their space goes up,
                      sealed to the hub, in a journal event ``transfer:<id>`` (kept
                      here until the hub acknowledges it, like every usage event)
    transfer_in    -> the learner is created with their space (roster_apply)
    share_status   -> spaces.uploads.set_share_status
    live_timetable -> sync.live_timetable.apply_timetable (the whole timetable, replaced)
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from hub_sync.formats.downlink import DOWNLINK_KIND, POLL_KIND
from hub_sync.formats.envelope import canonical_json, open_envelope, seal
from hub_sync.core.errors import FormatError, Problem, ReplayError, SignatureError
from hub_sync.core.migrations import Migrations
from hub_sync.formats.sealed_box import box_key, from_text, open_sealed, seal_to, to_text
from hub_sync.core.sqlite_db import transaction

from edge_agent.sync.hub_key import load_hub_key
from edge_agent.const import DEVICE_KEY_FILE
from edge_agent.journal import Journal

log = logging.getLogger(__name__)

migrations = Migrations("edge_downlink")


@migrations
def m001_downlink(db: sqlite_utils.Database) -> None:
    db.execute("create table downlink_log (seq integer primary key, kind text not null, status text not null,"
               " reason text not null default '', applied_at real not null)")
    db.execute("create table downlink_state (key text primary key, value text not null)")


@dataclass
class DownlinkResult:
    """What one ``apply_answer`` did."""

    applied: int = 0
    failed: int = 0
    skipped: int = 0
    more: bool = False
    cursor: int = 0
    failures: list[dict] = field(default_factory=list)

    def add(self, other: DownlinkResult) -> None:
        self.applied += other.applied
        self.failed += other.failed
        self.skipped += other.skipped
        self.more = other.more
        self.cursor = other.cursor
        self.failures += other.failures


def cursor(db: sqlite_utils.Database) -> int:
    """The sequence number of the last hub message applied (or failed) here."""
    row = db.execute("select value from downlink_state where key = 'applied_seq'").fetchone()
    return int(row[0]) if row else 0


def poll_request(db: sqlite_utils.Database, device_id: str, signer) -> bytes:
    """The signed question "what waits for me after my cursor?" (only a registered device may ask)."""
    return seal(POLL_KIND, canonical_json({"device": device_id, "after": cursor(db)}), signer)


def open_answer(envelope: bytes, hub_key, device_id: str, school_code: str) -> dict:
    """Verify a ``downlink`` envelope (poll answer or stick file) and return its checked payload."""
    try:
        payload, _ = open_envelope(envelope, DOWNLINK_KIND, [hub_key])
    except SignatureError as exc:
        raise SignatureError("县平台下发的消息签名无效，未应用任何内容",
                             f"downlink messages are not signed by the hub's online key; nothing applied ({exc.en})") from exc
    try:
        answer = json.loads(payload)
    except ValueError as exc:
        raise FormatError("县平台下发的消息格式无效，未应用任何内容", f"downlink payload is not JSON: {exc}") from exc
    return check_answer(answer, device_id, school_code)


def check_answer(answer: Any, device_id: str, school_code: str) -> dict:
    """An answer's shape, and that it is for this device; raises before anything is applied."""
    try:
        if answer["device_id"] != device_id or answer["school_code"] != school_code:
            raise ReplayError("下发的消息不是发给本机的，未应用任何内容", "downlink messages are for another device; nothing applied")
        messages = [{"seq": int(m["seq"]), "kind": str(m["kind"]), "box": str(m["box"])} for m in answer["messages"]]
        return {**answer, "messages": sorted(messages, key=lambda m: m["seq"]), "more": bool(answer.get("more"))}
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError("县平台下发的消息格式无效，未应用任何内容", f"downlink answer is malformed: {exc}") from exc


def apply_answer(appliance, answer: dict) -> DownlinkResult:
    """Apply a verified answer's messages after the cursor, each once, in order."""
    db = appliance.db
    result = DownlinkResult(more=bool(answer.get("more")))
    private = None
    for message in answer["messages"]:
        if message["seq"] <= cursor(db):
            result.skipped += 1  # applied before (a replay or a repeat): nothing happens twice
            continue
        if private is None:
            private = box_key(appliance.data_dir / DEVICE_KEY_FILE)
        status, reason = "applied", ""
        with transaction(db):
            if message["seq"] <= cursor(db):  # applied meanwhile by another path (stick and network at once)
                result.skipped += 1
                continue
            db.execute("savepoint downlink_message")
            try:
                body = json.loads(open_sealed(from_text(message["box"]), [private]))
                if message["kind"] not in APPLY:
                    _unknown(message["kind"])
                APPLY[message["kind"]](appliance, body)
                db.execute("release downlink_message")
            except (Problem, ValueError, KeyError, TypeError) as exc:
                db.execute("rollback to downlink_message")
                db.execute("release downlink_message")
                status, reason = "failed", _reason(exc)
            db.execute("insert or replace into downlink_log values (?, ?, ?, ?, ?)",
                       [message["seq"], message["kind"], status, reason, time.time()])
            db.execute("insert or replace into downlink_state values ('applied_seq', ?)", [str(message["seq"])])
            Journal(db).append("hub", "admin", f"downlink:{message['seq']}", {"kind": message["kind"], "status": status})
        if status == "failed":
            log.warning("hub message #%d (%s) could not be applied: %s", message["seq"], message["kind"], reason)
            result.failed += 1
            result.failures.append({"seq": message["seq"], "kind": message["kind"], "reason": reason})
        else:
            log.info("hub message #%d (%s) applied", message["seq"], message["kind"])
            result.applied += 1
    result.cursor = cursor(db)
    return result


def _reason(exc: Exception) -> str:
    """One line for the log and ``edge status``, with a roster problem's details (which class, which field)."""
    problems = getattr(exc, "details", {}).get("problems") or []
    if not problems:
        return str(exc)
    return (f"{getattr(exc, 'zh', exc)}：" + "；".join(p.get("message", "") for p in problems)
            + f" ({getattr(exc, 'en', '')}: " + "; ".join(p.get("message_en", "") for p in problems) + ")")


def status(db: sqlite_utils.Database) -> dict:
    """For ``edge status``: the cursor and the messages that failed (newest first)."""
    failed = [f"#{s} {k}: {r}" for s, k, r in db.execute(
        "select seq, kind, reason from downlink_log where status = 'failed' order by seq desc limit 5")]
    return {"hub_messages_applied_seq": cursor(db),
            "hub_messages_failed": db.execute("select count(*) from downlink_log where status = 'failed'").fetchone()[0],
            "hub_messages_last_failures": "; ".join(failed) or "-"}


def log_entries(db: sqlite_utils.Database, limit: int = 50) -> list[dict]:
    cols = ("seq", "kind", "status", "reason", "applied_at")
    return [dict(zip(cols, r)) for r in db.execute(f"select {', '.join(cols)} from downlink_log order by seq desc limit ?", [limit])]


# -- one function per kind ----------------------------------------------------------
def _unknown(kind: str) -> None:
    raise FormatError(f"未知的县平台消息类型 {kind}，请升级本机软件", f"unknown hub message kind {kind}; update this appliance")


def _notice(appliance, body: dict) -> None:
    from edge_agent.spaces.messages import post_notice

    post_notice(appliance.db, body.get("subject", ""), body.get("body", ""))


def _roster_change(appliance, body: dict) -> None:
    from edge_agent.spaces.roster_apply import apply_roster_change

    apply_roster_change(appliance.db, body)


def _share_status(appliance, body: dict) -> None:
    from edge_agent.spaces.uploads import set_share_status

    set_share_status(appliance.db, str(body["resource_id"]), str(body["status"]), str(body.get("note", "")))


def _transfer_in(appliance, body: dict) -> None:
    from edge_agent.spaces.roster_apply import apply_roster_change

    apply_roster_change(appliance.db, {"kind": "transfer_in", "row": body["row"], "space": body.get("space") or {}})


def _transfer_out(appliance, body: dict) -> None:
    """Mark the learner transferred out and journal their space sealed to the hub (it goes up with usage)."""
    from edge_agent.spaces.people import find_by_number
    from edge_agent.spaces.roster_apply import apply_roster_change, export_space

    db = appliance.db
    number = str(body["number"])
    person = find_by_number(db, number)
    if person is None:
        from edge_agent.spaces.errors import SpaceError

        raise SpaceError(f"本校没有学籍号为 {number} 的学生，无法转出", f"no learner numbered {number} at this school; cannot transfer out")
    row = _roster_row(db, person.id)
    apply_roster_change(db, {"kind": "transfer_out", "number": number})
    bundle = {"transfer_id": body["transfer_id"], "number": number, "row": row, "space": export_space(db, person.id)}
    box = seal_to(load_hub_key(appliance.data_dir), canonical_json(bundle))
    Journal(db).append("hub", "admin", f"transfer:{body['transfer_id']}", {"box": to_text(box), "person_id": person.id})


def _roster_row(db: sqlite_utils.Database, person_id: int) -> dict:
    """A person as a roster line (what the new school needs to create them)."""
    name, number, gender, grade, roles = db.execute(
        "select name, number, gender, grade, roles from people where id = ?", [person_id]).fetchone()
    classes = [r[0] for r in db.execute(
        "select c.name from class_members m join classes c on c.id = m.class_id where m.person_id = ? order by c.name", [person_id])]
    row = {"name": name, "number": number, "gender": gender or "", "grade": grade or "", "classes": classes[:1],
           "role": sorted(r for r in (roles or "").split(",") if r in ("student",)) or ["student"]}
    parent = db.execute("select p.number, p.name from parent_links l join people p on p.id = l.parent_id"
                        " where l.child_id = ? order by p.id limit 1", [person_id]).fetchone()
    if parent:
        row["parent_phone"], row["parent_name"] = parent
    return row


def _live_timetable(appliance, body: dict) -> None:
    from edge_agent.sync.live_timetable import apply_timetable

    apply_timetable(appliance.db, body)


APPLY = {"notice": _notice, "roster_change": _roster_change, "share_status": _share_status,
         "transfer_in": _transfer_in, "transfer_out": _transfer_out, "live_timetable": _live_timetable}
