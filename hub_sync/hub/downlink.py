"""Down: what the county sends to its schools, in order, signed, personal data encrypted.

Every school has one queue of messages, each with a per-school sequence number
(1, 2, 3 ...), a kind and a JSON payload:

    notice         {"subject", "body"}                         a system notice for everyone
    roster_change  a change checked by ``roster_change``       a person, class, graduation ...
    transfer_out   {"transfer_id", "number"}                   a learner leaves: send their space up
    transfer_in    {"transfer_id", "row", "space"}             a learner arrives with their space
                                                               (a transfer: waiting -> received -> delivered)
    share_status   {"resource_id", "status", "note"}           an offered teacher upload's state
    live_timetable {"lessons", "issued_at"}                    the school's whole live-lesson timetable
                                                               (``hub_sync.hub.live_timetable``)

A device says which sequence it last applied; the hub answers with the messages
after it (``answer``; at most ``MAX_MESSAGES`` / ``MAX_ANSWER_BYTES`` at once, and
``more`` says to ask again), every payload sealed to that device's key
(``hub_sync.formats.sealed_box``). The answer rides inside the signed usage
acknowledgement, in a ``downlink`` envelope for a poll, or on a stick; the device
applies each message once, in order.

A device gets only the messages queued after it enrolled (``Device.downlink_start``),
so a replacement device does not receive its predecessor's queue. Personal data
stays in a queue only until it is delivered: once every active device of the school
has acknowledged a message (``acknowledge``: the cursor of a signed poll, of a signed
stick export, or a journalled ``downlink:<seq>`` event in a signed usage batch), its
payload is blanked (with SQLite's ``secure_delete``, so the bytes are overwritten,
not only unlinked); its sequence number, kind and time stay, for ordering and for
the numbering of the next message. A revoked device counts no more: what only it
was waiting for is blanked at once (``forget_delivered``).

Things devices send up that need an answer (offered uploads, a transferred
learner's space) are found by ``scan`` in the usage events a device uploaded,
after they are stored, in one transaction with the messages they cause.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable

from hub_sync.core.const import MIB
from hub_sync.core.errors import DeviceError, FormatError, Problem
from hub_sync.formats.envelope import canonical_json
from hub_sync.formats.sealed_box import box_key, from_text, open_sealed, seal_to, to_text
from hub_sync.hub import scan_cursors
from hub_sync.hub.database import Database, transaction
from hub_sync.hub.registry import Device, Registry
from hub_sync.hub.roster_change import STUDENT_NUMBER, change_problems

log = logging.getLogger(__name__)

KINDS = ("notice", "roster_change", "transfer_out", "transfer_in", "share_status", "live_timetable")
MAX_MESSAGES = 20                      # per answer: keeps one answer short on a thin link
MAX_ANSWER_BYTES = 2 * MIB            # ... and a transferred space or two at most
NOTICE_MAX_CHARS = 2000
LEGACY_USB_KEY_FILE = "usb-x25519.pem"  # the second hub key of earlier versions, for sticks (read-only now)
# what scan() reads: events with this verb, or about objects with these prefixes
SHARED = "shared"
SCANNED_OBJECTS = ("transfer:", "downlink:")
SHARE_RECEIVED_NOTE = "县平台已收到，等待审核 (received by the county, waiting for review)"


class Downlink:
    """The hub's outgoing queues."""

    def __init__(self, db: Database) -> None:
        self.db = db  # its tables exist: Hub.open applies every hub migration set

    # -- queueing -----------------------------------------------------------------
    def queue(self, school_code: str, kind: str, payload: dict) -> int:
        """Append one message to a school's queue; returns its sequence number."""
        if kind not in KINDS:
            raise FormatError(f"未知的下发消息类型 {kind}", f"unknown downlink message kind {kind}")
        with transaction(self.db):
            self.db.lock(f"downlink:{school_code}")  # several hub processes: one numbers at a time, in order
            seq = self.last_seq(school_code) + 1
            self.db.execute("insert into downlink_messages values (?, ?, ?, ?, ?)",
                            [school_code, seq, kind, json.dumps(payload, ensure_ascii=False, sort_keys=True), time.time()])
        log.info("queued %s #%d for school %s", kind, seq, school_code)
        return seq

    def schools(self) -> list[str]:
        """Schools with at least one active device."""
        return [r[0] for r in self.db.execute("select distinct school_code from devices where status = 'active' order by 1")]

    def notice(self, schools: list[str], subject: str, body: str) -> dict[str, int]:
        """Queue one notice for each school; returns {school: seq}."""
        body = (body or "").strip()
        if not body or len(body) > NOTICE_MAX_CHARS:
            raise FormatError(f"通知内容为空或超过 {NOTICE_MAX_CHARS} 字，未发送", f"notice body is empty or longer than {NOTICE_MAX_CHARS} characters; nothing queued")
        self._known(schools)
        with transaction(self.db):
            return {s: self.queue(s, "notice", {"subject": subject or "", "body": body}) for s in schools}

    def roster_changes(self, school_code: str, changes: list) -> list[int]:
        """Check every change, then queue all of them, or none if any is wrong."""
        self._known([school_code])
        found = [(i, zh, en) for i, c in enumerate(changes, 1) for zh, en in change_problems(c)]
        problems = [f"#{i}: {zh}" for i, zh, _ in found]
        problems_en = [f"#{i}: {en}" for i, _, en in found]
        if not changes or problems:
            raise FormatError("名单变更无效，未发送任何内容：" + ("；".join(problems) or "文件里没有变更"),
                              "roster change refused, nothing queued: " + ("; ".join(problems_en) or "the file holds no change"))
        with transaction(self.db):
            return [self.queue(school_code, "roster_change", c) for c in changes]

    def transfer(self, number: str, from_school: str, to_school: str, to_class: str = "") -> str:
        """Start moving a learner: ask the old school for their space. Returns the transfer id."""
        number = (number or "").strip().upper()
        if not STUDENT_NUMBER.match(number):
            raise FormatError(f"学籍号“{number}”格式不对，应为 G 加 18 位", f"student number {number!r} has the wrong shape (G + 18 characters)")
        if from_school == to_school:
            raise FormatError("转出和转入学校相同", "the old and the new school are the same")
        self._known([from_school, to_school])
        transfer_id = "tr-" + secrets.token_hex(8)
        with transaction(self.db):
            busy = self.db.execute("select transfer_id from transfers where number = ? and status = 'waiting'", [number]).fetchone()
            if busy:
                raise FormatError(f"学生 {number} 的转学 {busy[0]} 尚未完成", f"transfer {busy[0]} of {number} is not finished yet")
            self.db.execute("insert into transfers (transfer_id, number, from_school, to_school, to_class, status, created_at)"
                            " values (?, ?, ?, ?, ?, 'waiting', ?)", [transfer_id, number, from_school, to_school, to_class, time.time()])
            self.queue(from_school, "transfer_out", {"transfer_id": transfer_id, "number": number})
        return transfer_id

    def transfers(self) -> list[dict]:
        cols = ("transfer_id", "number", "from_school", "to_school", "to_class", "status", "created_at", "received_at")
        return [dict(zip(cols, r)) for r in self.db.execute(f"select {', '.join(cols)} from transfers order by created_at")]

    def _known(self, schools: list[str]) -> None:
        known = set(self.schools())
        missing = [s for s in schools if s not in known]
        if missing or not schools:
            raise DeviceError(f"县平台没有学校 {'、'.join(missing) or '（无）'} 的已登记设备，未发送",
                              f"no enrolled device for school {', '.join(missing) or '(none)'}; nothing queued")

    # -- delivering -----------------------------------------------------------------
    def last_seq(self, school_code: str) -> int:
        return self.db.execute("select coalesce(max(seq), 0) from downlink_messages where school_code = ?", [school_code]).fetchone()[0]

    def waiting(self, school_code: str, after: int) -> int:
        """Messages of the school after ``after`` not yet delivered everywhere (payload still held)."""
        return self.db.execute("select count(*) from downlink_messages where school_code = ? and seq > ? and payload != ''",
                               [school_code, after]).fetchone()[0]

    def answer(self, device: Device, after: int, max_messages: int | None = MAX_MESSAGES,
               max_bytes: int | None = MAX_ANSWER_BYTES) -> dict | None:
        """The messages after ``after`` for ``device`` (sealed to its key), or None when none wait.

        Never one queued before the device enrolled, nor one already delivered everywhere."""
        rows = self.db.execute("select seq, kind, payload from downlink_messages where school_code = ? and seq > ?"
                               " and payload != '' order by seq" + ("" if max_messages is None else f" limit {int(max_messages) + 1}"),
                               [device.school_code, max(int(after), device.downlink_start)]).fetchall()
        if not rows:
            return None
        messages, size = [], 0
        for seq, kind, payload in rows[:max_messages] if max_messages is not None else rows:
            box = to_text(seal_to(device.public_key, payload.encode("utf-8")))
            if messages and max_bytes is not None and size + len(box) > max_bytes:
                break
            messages.append({"seq": seq, "kind": kind, "box": box})
            size += len(box)
        return {"device_id": device.device_id, "school_code": device.school_code, "after": int(after),
                "messages": messages, "more": len(messages) < len(rows), "hub_time": time.time()}

    def reported(self, device_id: str, applied_seq: int) -> int:
        """Remember what a device said (in a signed export) it has applied; see ``acknowledge``."""
        return self.acknowledge(Registry(self.db).get(device_id), applied_seq)

    def acknowledge(self, device: Device, applied_seq: int) -> int:
        """Record that ``device`` applied every message up to ``applied_seq`` (only ever
        from something the device signed) and blank what is now delivered everywhere;
        returns the payloads blanked. Costs one read when nothing is new (the idle poll)."""
        if int(applied_seq) <= max(self.reported_seq(device.device_id), device.downlink_start):
            return 0
        with transaction(self.db):
            # never past the last message queued: a device cannot acknowledge what does not exist yet
            applied = min(int(applied_seq), self.last_seq(device.school_code))
            self.db.execute("insert into downlink_reported (device_id, applied_seq, at) values (?, ?, ?) on conflict (device_id)"
                            " do update set applied_seq = case when downlink_reported.applied_seq > excluded.applied_seq"
                            " then downlink_reported.applied_seq else excluded.applied_seq end, at = excluded.at",
                            [device.device_id, applied, time.time()])
            return self.forget_delivered(device.school_code)

    def revoke(self, device_id: str) -> tuple[Device, int]:
        """Revoke a device (``Registry.revoke``: everything it sends is refused from now on)
        and, in the same transaction, forget what only it was waiting for.
        Returns the revoked device and the payloads blanked."""
        with transaction(self.db):
            device = Registry(self.db).revoke(device_id)
            return device, self.forget_delivered(device.school_code)

    def forget_delivered(self, school_code: str) -> int:
        """Blank the payloads of the school's messages that no active device still waits for
        (each has acknowledged them, or enrolled after them); returns how many."""
        with transaction(self.db):
            needs = self.db.execute(
                "select case when d.downlink_start > coalesce(r.applied_seq, 0) then d.downlink_start"
                " else coalesce(r.applied_seq, 0) end from devices d left join downlink_reported r"
                " on r.device_id = d.device_id where d.school_code = ? and d.status = 'active'", [school_code]).fetchall()
            upto = min([n for (n,) in needs] + [self.last_seq(school_code)])
            # SQLite: overwrite the freed bytes, not only unlink them: Debian builds SQLite with this on,
            # others do not (the setting lasts for this connection). PostgreSQL keeps the old row version
            # until autovacuum reclaims it.
            if self.db.dialect == "sqlite":
                self.db.execute("pragma secure_delete = on")
            forgotten = self.db.execute(
                "update downlink_messages set payload = '' where school_code = ? and seq <= ? and payload != ''",
                [school_code, upto]).rowcount
        if forgotten:
            log.info("school %s: %d delivered message(s) up to #%d forgotten", school_code, forgotten, upto)
        return forgotten

    def reported_seq(self, device_id: str) -> int:
        row = self.db.execute("select applied_seq from downlink_reported where device_id = ?", [device_id]).fetchone()
        return row[0] if row else 0

    # -- what came up ---------------------------------------------------------------
    def scan(self, device: Device, open_box: Callable[[bytes], bytes]) -> int:
        """Answer what ``device``'s newly stored usage events ask for; returns messages queued.

        ``shared`` events (a teacher offered a resource) get a ``share_status``
        "received, waiting for review"; a ``transfer:<id>`` event carries the
        learner's space sealed to the hub (``open_box`` decrypts it), which is kept
        with the transfer and queued as ``transfer_in`` for the new school.
        """
        queued = 0
        if self._scan_range(device.device_id) is None:  # nothing new: no write lock taken
            return 0
        with transaction(self.db):
            span = self._scan_range(device.device_id)
            if span is None:
                return 0
            scanned, top = span
            applied = 0
            for _seq, verb, obj, data in self.db.execute(
                    "select seq, verb, object, data from usage_events where device_id = ? and seq > ? and seq <= ?"
                    " and (verb = 'shared' or object like 'transfer:%' or object like 'downlink:%')",  # SHARED, SCANNED_OBJECTS
                    [device.device_id, scanned, top]).fetchall():
                if verb == "shared" and obj.startswith("resource:"):
                    self.queue(device.school_code, "share_status",
                               {"resource_id": obj.split(":", 1)[1], "status": "pending", "note": SHARE_RECEIVED_NOTE})
                    queued += 1
                elif obj.startswith("transfer:"):
                    queued += self._space_arrived(device, obj.split(":", 1)[1], data, open_box)
                elif obj.startswith("downlink:"):
                    self._message_done(device, obj.split(":", 1)[1], data)
                    applied = max(applied, _int(obj.split(":", 1)[1]))
            self.db.execute("insert into downlink_scan (device_id, scanned_seq) values (?, ?)"
                            " on conflict (device_id) do update set scanned_seq = excluded.scanned_seq", [device.device_id, top])
            if applied:  # the device journals each message it applied: a signed acknowledgement
                self.acknowledge(device, applied)
        return queued

    def pass_over(self, device_id: str, strings: list[str], before: int, top: int) -> bool:
        """Inside the transaction that stored ``device_id``'s events ``before + 1`` .. ``top``
        (their batch's distinct ``strings``): when none can be a share, a transfer or an applied
        message, mark them scanned without reading them back; return whether it did (if not,
        :meth:`scan` reads them after the commit)."""
        if SHARED in strings or any(s.startswith(SCANNED_OBJECTS) for s in strings):
            return False
        return scan_cursors.pass_over(self.db, "downlink_scan", device_id, before, top)

    def _message_done(self, device: Device, seq: str, data: str) -> None:
        """The new school's device journalled applying a ``transfer_in``: the transfer is done (or failed there)."""
        try:
            done = json.loads(data)
            if done.get("kind") != "transfer_in":
                return
            state = "delivered" if done.get("status") == "applied" else "failed_at_new_school"
            self.db.execute("update transfers set status = ? where to_school = ? and delivered_seq = ? and status = 'received'",
                            [state, device.school_code, int(seq)])
        except (ValueError, TypeError, AttributeError):
            log.warning("unreadable downlink event %s from %s; ignored", seq, device.device_id)

    def _scan_range(self, device_id: str) -> tuple[int, int] | None:
        """(scanned, stored) sequence numbers of a device when stored events wait to be scanned."""
        row = self.db.execute("select scanned_seq from downlink_scan where device_id = ?", [device_id]).fetchone()
        scanned = row[0] if row else 0
        top = self.db.execute("select contiguous_seq from device_usage_state where device_id = ?", [device_id]).fetchone()
        top = top[0] if top else 0
        return (scanned, top) if top > scanned else None

    def _space_arrived(self, device: Device, transfer_id: str, data: str, open_box) -> int:
        row = self.db.execute("select number, from_school, to_school, to_class, status from transfers where transfer_id = ?",
                              [transfer_id]).fetchone()
        if row is None or row[1] != device.school_code or row[4] != "waiting":
            log.info("transfer %s from %s: not waiting for a space here; ignored", transfer_id, device.device_id)
            return 0
        number, _, to_school, to_class, _ = row
        try:
            bundle = json.loads(open_box(from_text(json.loads(data)["box"])))
            person = dict(bundle["row"])
            if str(person.get("number", "")).upper() != number:
                raise ValueError("the space is for another learner")
        except (ValueError, KeyError, TypeError, FormatError) as exc:
            log.warning("transfer %s: the space from %s cannot be read (%s); still waiting", transfer_id, device.device_id, exc)
            return 0
        if to_class:
            person["classes"] = [to_class]
        seq = self.queue(to_school, "transfer_in", {"transfer_id": transfer_id, "row": person, "space": bundle.get("space") or {}})
        self.db.execute("update transfers set status = 'received', received_at = ?, delivered_seq = ? where transfer_id = ?",
                        [time.time(), seq, transfer_id])
        log.info("transfer %s: space of %s received from %s, queued for %s", transfer_id, number, device.school_code, to_school)
        return 1


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def hub_box_opener(hub) -> Callable[[bytes], bytes]:
    """Decrypts what devices sealed to the hub (``hub_sync.formats.sealed_box``: spaces going up,
    usage on a stick): with the current online key, a retired one (a device that sealed before it
    saw the rotation), or the stick key of earlier versions (a stick written before the upgrade).
    Key files are read only when needed; one that cannot be read is skipped with a warning."""
    from hub_sync.hub.publisher import online_key_files

    def keys():
        legacy = hub.data_dir / "keys" / LEGACY_USB_KEY_FILE
        for path in [*online_key_files(hub), *([legacy] if legacy.is_file() else [])]:
            try:
                yield box_key(path)
            except Problem as exc:
                log.warning("hub key %s cannot open boxes: %s", path, exc.en)

    return lambda data: open_sealed(data, keys())


def answer_bytes(answer: dict) -> bytes:
    """The canonical bytes of an answer (what a ``downlink`` envelope signs)."""
    return canonical_json(answer)
