"""Pupils' hands, questions and poll answers at the hub, per lesson and teaching point.

Each message arrives as a ``live-interaction`` envelope signed by its device
(``hub_sync.formats.live_interaction``) with the device's own sequence number.
``receive`` stores a device's messages exactly once and in order: a seq already
stored is skipped (a resend after a lost answer), one after a gap is not stored
(the device sends what is missing first), and the answer is the highest seq held
without a gap, which the device takes as its acknowledgement.

The central teacher starts a quick poll (``start_poll``; a new one closes the
last), sees what came in per teaching point (``feed``), and signs in to the
teacher page with a per-lesson token printed by ``school-edge hub live
teacher-token`` (only its SHA-256 is kept). Pupils' names and questions are forgotten
``KEEP_DAYS`` after they arrived.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

from hub_sync.core.errors import DeviceError, FormatError
from hub_sync.formats.envelope import open_envelope
from hub_sync.formats.live_interaction import INTERACTION_KIND, check_interaction, check_poll
from hub_sync.formats.live_timetable import lesson_id
from hub_sync.hub.database import Database, transaction
from hub_sync.hub.registry import Registry

MAX_BATCH = 200            # envelopes per request: a long outbox goes up in a few requests
FEED_QUESTIONS = 50        # newest questions shown per teaching point
KEEP_DAYS = 30             # pupils' names and questions are forgotten a month after they arrived


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class LiveInteraction:
    """The hub's side of a live lesson's way back."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- pupils' messages ---------------------------------------------------------
    def receive(self, device_id: str, envelopes: list) -> int:
        """Verify and store ``device_id``'s envelopes in seq order, each once; returns the highest
        seq stored without a gap. Nothing is stored if one is not signed by the device."""
        device = Registry(self.db).active(device_id)
        if not isinstance(envelopes, list) or len(envelopes) > MAX_BATCH:
            raise FormatError(f"一次最多 {MAX_BATCH} 条互动消息", f"at most {MAX_BATCH} interaction messages per request")
        messages = []
        for raw in envelopes:
            if not isinstance(raw, str):
                raise FormatError("互动消息格式无效", "interaction envelope must be a JSON string")
            payload, _ = open_envelope(raw.encode("utf-8"), INTERACTION_KIND, [device.public_key])
            try:
                message = check_interaction(json.loads(payload))
            except ValueError as exc:
                raise FormatError("互动消息格式无效", f"interaction payload is not JSON: {exc}") from exc
            if message["device"] != device_id:
                raise DeviceError("互动消息不是这台设备的", "interaction message names another device")
            messages.append(message)
        now = time.time()
        with transaction(self.db):
            held = self.held(device_id)
            for m in sorted(messages, key=lambda m: m["seq"]):
                if m["seq"] <= held:
                    continue  # stored before: a resend after a lost answer is stored once
                if m["seq"] != held + 1:
                    break  # a gap: the device sends the missing ones first, in order
                body = {k: m[k] for k in ("text", "poll", "option", "person") if k in m}
                self.db.execute("insert into live_messages values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [device_id, m["seq"], device.school_code, m["lesson"], m["kind"], m["pupil"],
                                 json.dumps(body, ensure_ascii=False), m["at"], now])
                held = m["seq"]
            self.db.execute("insert into live_held values (?, ?) on conflict (device_id) do update set held = excluded.held",
                            [device_id, held])
            self.db.execute("delete from live_messages where received_at < ?", [now - KEEP_DAYS * 86400])
        return held

    def held(self, device_id: str) -> int:
        """The highest seq of ``device_id`` stored (they are stored without gaps)."""
        row = self.db.execute("select held from live_held where device_id = ?", [device_id]).fetchone()
        return row[0] if row else 0

    # -- polls --------------------------------------------------------------------
    def start_poll(self, lesson: str, question: str, options: list) -> dict:
        """Start a quick poll for ``lesson`` (closing the open one); returns it."""
        lesson = lesson_id(lesson)
        poll = {"id": "p-" + secrets.token_hex(4), **check_poll(question, options)}
        with transaction(self.db):
            self.db.execute("update live_polls set closed_at = ? where lesson = ? and closed_at is null", [time.time(), lesson])
            self.db.execute("insert into live_polls values (?, ?, ?, ?, ?, null)",
                            [poll["id"], lesson, poll["question"], json.dumps(poll["options"], ensure_ascii=False), time.time()])
        return poll

    def close_poll(self, lesson: str) -> None:
        with transaction(self.db):
            self.db.execute("update live_polls set closed_at = ? where lesson = ? and closed_at is null", [time.time(), lesson])

    def open_poll(self, lesson: str) -> dict | None:
        """The lesson's open poll ({id, question, options}) or None."""
        row = self.db.execute("select poll_id, question, options from live_polls where lesson = ? and closed_at is null"
                              " order by started_at desc limit 1", [lesson]).fetchone()
        return {"id": row[0], "question": row[1], "options": json.loads(row[2])} if row else None

    def last_poll(self, lesson: str) -> dict | None:
        row = self.db.execute("select poll_id, question, options, closed_at from live_polls where lesson = ?"
                              " order by started_at desc limit 1", [lesson]).fetchone()
        return {"id": row[0], "question": row[1], "options": json.loads(row[2]), "open": row[3] is None} if row else None

    # -- the teacher's view ---------------------------------------------------------
    def feed(self, lesson: str, schools: list[str]) -> dict:
        """What came in for ``lesson``, per teaching point: raised hands (newest last), questions,
        and the counts of the last poll's answers (a pupil's last answer counts)."""
        poll = self.last_poll(lesson)
        names = dict(self.db.execute("select school_code, max(school_name) from devices group by school_code").fetchall())
        per: dict[str, dict] = {}

        def site(code: str) -> dict:
            return per.setdefault(code, {"school_code": code, "school_name": names.get(code, "") or "", "hands": [],
                                         "questions": [], "counts": [0] * len(poll["options"]) if poll else []})

        for code in schools:
            site(code)
        for code, kind, pupil, body, sent_at in self.db.execute(
                "select school_code, kind, pupil, body, sent_at from live_messages where lesson = ? and kind != 'answer'"
                " order by sent_at, device_id, seq", [lesson]):
            entry = {"pupil": pupil, "at": sent_at, **({"text": json.loads(body)["text"]} if kind == "question" else {})}
            site(code)["hands" if kind == "hand" else "questions"].append(entry)
        if poll:
            latest: dict[tuple[str, str, int], int] = {}
            for code, device_id, body in self.db.execute(
                    "select school_code, device_id, body from live_messages where lesson = ? and kind = 'answer'"
                    " order by device_id, seq", [lesson]):
                data = json.loads(body)
                if data.get("poll") == poll["id"] and 0 <= data.get("option", -1) < len(poll["options"]):
                    latest[(code, device_id, data.get("person", 0))] = data["option"]  # a pupil's last answer counts
            for (code, _device, _person), option in latest.items():
                site(code)["counts"][option] += 1
        for s in per.values():
            s["questions"] = s["questions"][-FEED_QUESTIONS:]
        return {"lesson": lesson, "poll": poll, "schools": [per[c] for c in sorted(per)]}

    # -- the teacher's token ------------------------------------------------------------
    def new_teacher_token(self, lesson: str) -> str:
        """A new token for ``lesson``'s teacher page (the old one stops working); shown once."""
        lesson = lesson_id(lesson)
        token = secrets.token_urlsafe(18)
        with transaction(self.db):
            self.db.execute("insert into live_teachers (lesson, token_hash, created_at) values (?, ?, ?) on conflict (lesson)"
                            " do update set token_hash = excluded.token_hash, created_at = excluded.created_at",
                            [lesson, _hash(token), time.time()])
        return token

    def teacher_may(self, lesson: str, token: str) -> bool:
        row = self.db.execute("select token_hash from live_teachers where lesson = ?", [lesson]).fetchone()
        return bool(row and token and hmac.compare_digest(row[0], _hash(token)))
