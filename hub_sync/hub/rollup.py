"""Usage roll-ups kept current at ingest: counts and exact sets of learners (all SQL here).

``UsageIngest.ingest`` calls ``Rollup.add`` inside the transaction that stores a
batch, with only the events above the device's contiguous sequence (the
per-device cursor of ``device_usage_state``): a batch stored twice, a resend
overlapping what is held, or a replay adds nothing, and a crash leaves both the
events and their roll-up or neither. Reports read only these tables, never the
raw events.

One table of cells, ``rollup``, kept at three levels of time bucket (``level`` ``d``
a day, ``w`` a week starting Monday, ``m`` a calendar month; ``start`` the bucket's
first day as days since 1970-01-01 in the county's time zone, UTC+8), per bucket x
dimension x device. A dimension is ``*`` (everything the device recorded),
``s:<subject>``, ``g:<grade>``, ``k:<kind>`` (as the hub's catalogue had the resource
when its events arrived; '' when unknown) or ``r:<resource>``. A cell holds the
events, assignments given, work handed in, and the set of learners (and for ``*``
teachers) as a bitset over the device's person numbers, so distinct counts over any
period and any set of devices are exact: OR the buckets of a device, count the
bits, add the devices (a person number belongs to one device). Every report reads
narrow ranges of the primary key (bucket, dimension), never a scan.

``rollup_people`` holds the device's person numbers and whether the person is a
teacher (anyone who ever assigned, graded, uploaded or shared; from then on their
views count as a teacher's, not a learner's); ``rollup_assignments`` the resource
each assignment is about, so a hand-in (which names only the assignment) counts
for its resource.

A person who uses two devices counts once per device.

Both engines, one SQL: the cells are upserts with an explicit conflict target
(``on conflict (level, start, dim, device_id) do update``, ``bits_or`` a Python function
on SQLite, plpgsql on PostgreSQL). Every row but the change marks belongs to one device,
and the ingest transaction holds that device's cursor lock, so two ``hub serve``
processes never write the same cell at once. ``rollup_changes`` (per county / school and
day) is shared by every device: written last, in sorted order (no deadlock between two
processes, row locks held only until the commit). The hot writes bypass SQLAlchemy's
executemany (which builds a dict per row in Python): ``insert_rows`` sends one
``insert ... select * from unnest(<one array per column>) on conflict ...`` on
PostgreSQL (one plan and one round trip for a batch's cells) and the driver's
executemany on SQLite; the conflict clause is the same text for both.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from functools import lru_cache
from itertools import compress, islice
from operator import gt
from typing import Iterable, Sequence

from hub_sync.hub.database import Database, driver_errors


UTC_OFFSET_S = 8 * 3600  # days are the county's days (China Standard Time)
DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)
LEARNER_VERBS = frozenset({"viewed", "progressed", "completed", "answered", "submitted"})
TEACHER_VERBS = frozenset({"assigned", "graded", "uploaded", "shared"})
LEVELS = ("d", "w", "m")


def day_number(d: date) -> int:
    """Days since 1970-01-01 (the ``start`` of a day bucket)."""
    return (d - EPOCH).days


def day_date(n: int) -> date:
    return EPOCH + timedelta(days=n)


@lru_cache(maxsize=8192)
def bucket_start(level: str, day: int) -> int:
    """The first day of the ``level`` bucket holding ``day``."""
    if level == "d":
        return day
    d = day_date(day)
    if level == "w":
        return day - d.weekday()
    return day_number(d.replace(day=1))


def bits_or(a: bytes | None, b: bytes | None) -> bytes:
    """OR of two bitsets (little-endian bytes); SQLite calls it when a set row meets another."""
    x = int.from_bytes(a or b"", "little") | int.from_bytes(b or b"", "little")
    return x.to_bytes((x.bit_length() + 7) // 8, "little")


def to_bits(x: int) -> bytes:
    return x.to_bytes((x.bit_length() + 7) // 8, "little")


# SQL functions the hub's SQLite connections get at connect (PostgreSQL has ``bits_or`` from the schema)
SQLITE_FUNCTIONS = {"bits_or": (2, bits_or)}


class Rollup:
    """Add a batch's new events to the roll-ups (call inside the ingest transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, device_id: str, batch, after_seq: int, school_code: str = "") -> int:
        """Roll up the events of ``batch`` (a decoded ``usage_batch.Batch``) with seq > ``after_seq``
        (a device of ``school_code``); return how many.

        The per-event work is done by C iterators (map, zip, compress, Counter) over the
        batch's integer columns; Python loops only over what is distinct in the batch
        (days x resources x verbs, learners per day and resource)."""
        first = max(0, after_seq + 1 - batch.header.first_seq)
        n = batch.header.count
        if first >= n:
            return 0
        strings = batch.strings
        verbs, actors, objects, datas = (col[first:] for col in (batch.verb, batch.actor, batch.object, batch.data))
        teacher_verb = {i for i, v in enumerate(strings) if v in TEACHER_VERBS}
        learner_verb = {i for i, v in enumerate(strings) if v in LEARNER_VERBS}
        people = self._people(device_id)
        acting = set(actors)
        self._number(device_id, people, {strings[a] for a in acting},
                     {strings[a] for a in set(compress(actors, map(teacher_verb.__contains__, verbs)))})
        bit = {a: 1 << people[strings[a]][0] for a in acting}
        teacher_actor = {a for a in acting if people[strings[a]][1]}
        catalogue = _Catalogue(self.db, device_id)
        of = catalogue.resolver(batch, first)
        off = UTC_OFFSET_S * 1000
        days = list(map(DAY_MS.__rfloordiv__, map(off.__add__, islice(batch.ts_ms, first, None))))
        cells = list(zip(days, map(of.__getitem__, zip(objects, datas))))  # (day, resource) of every event
        # per (day, resource): events, assignments given, handed in, learner bits
        tally: dict[tuple[int, str], list[int]] = {k: [c, 0, 0, 0] for k, c in Counter(cells).items()}
        assigned = {i for i, v in enumerate(strings) if v == "assigned"}
        for k, c in Counter(compress(cells, map(assigned.__contains__, verbs))).items():
            tally[k][1] += c
        handed = {(v, d) for v, d in set(zip(verbs, datas))
                  if strings[v] in ("submitted", "answered") and catalogue.handed_in(strings[v], d)}
        for k, c in Counter(compress(cells, map(handed.__contains__, zip(verbs, datas)))).items():
            tally[k][2] += c
        # a teacher's events count as a teacher's whatever the verb; a learner's only for learner verbs
        learning = map(gt, map(learner_verb.__contains__, verbs), map(teacher_actor.__contains__, actors))
        for cell, a in set(compress(zip(cells, actors), learning)):
            tally[cell][3] |= bit[a]
        teachers: dict[int, int] = defaultdict(int)
        for day, a in set(compress(zip(days, actors), map(teacher_actor.__contains__, actors))):
            teachers[day] |= bit[a]
        self._write(device_id, tally, teachers, catalogue)
        now = time.time()
        # the county's and the school's change marks are rows every device's batches write: in one
        # order (no deadlock between two processes) and last, so their row locks are held shortest
        insert_rows(self.db, "rollup_changes (scope, day, changed_at)", ("text", "bigint", "float8"),
                    "on conflict (scope, day) do update set changed_at = excluded.changed_at",
                    [(scope, day, now) for scope in sorted({"", school_code}) for day in sorted({d for d, _ in tally})])
        return n - first

    # -- people -----------------------------------------------------------------
    def _people(self, device_id: str) -> dict[str, tuple[int, bool]]:
        return {a: (i, bool(t)) for a, i, t in self.db.execute(
            "select actor, idx, teacher from rollup_people where device_id = ?", [device_id])}

    def _number(self, device_id: str, people: dict, actors: set[str], teachers: set[str]) -> None:
        """Give new actors the device's next numbers and mark new teachers; update ``people``."""
        nxt = max((i for i, _ in people.values()), default=-1) + 1
        new, promoted = [], []
        for actor in sorted(actors):
            known = people.get(actor)
            if known is None:
                people[actor] = (nxt, actor in teachers)
                new.append((device_id, actor, nxt, int(actor in teachers)))
                nxt += 1
            elif actor in teachers and not known[1]:
                people[actor] = (known[0], True)
                promoted.append((device_id, actor))
        insert_rows(self.db, "rollup_people (device_id, actor, idx, teacher)", ("text", "text", "bigint", "bigint"), "", new)
        raw_executemany(self.db, "update rollup_people set teacher = 1 where device_id = ? and actor = ?", promoted)

    # -- writing ------------------------------------------------------------------
    def _write(self, device_id: str, tally, teachers, catalogue: "_Catalogue") -> None:
        """Add the batch's per-day tallies to every dimension, then every level: one upsert per cell."""
        per_day: dict[tuple[int, str], list[int]] = {}
        for (day, resource), (ev, asg, hand, lb) in tally.items():
            for dim in catalogue.dims(resource):
                c = per_day.get((day, dim))
                if c is None:
                    per_day[(day, dim)] = [ev, asg, hand, lb, 0]
                else:
                    c[0] += ev
                    c[1] += asg
                    c[2] += hand
                    c[3] |= lb
        for day, tb in teachers.items():
            c = per_day.get((day, "*"))
            if c is None:
                per_day[(day, "*")] = [0, 0, 0, 0, tb]
            else:
                c[4] |= tb
        cells: dict[tuple[str, int, str], list[int]] = {}
        for (day, dim), (ev, asg, hand, lb, tb) in per_day.items():
            for level in LEVELS:
                key = (level, bucket_start(level, day), dim)
                c = cells.get(key)
                if c is None:
                    cells[key] = [ev, asg, hand, lb, tb]
                else:
                    c[0] += ev
                    c[1] += asg
                    c[2] += hand
                    c[3] |= lb
                    c[4] |= tb
        insert_rows(
            self.db, "rollup (level, start, dim, device_id, events, assigned, handed_in, learners, teachers)",
            ("text", "bigint", "text", "text", "bigint", "bigint", "bigint", "bytea", "bytea"),
            "on conflict (level, start, dim, device_id) do update set"
            " events = rollup.events + excluded.events, assigned = rollup.assigned + excluded.assigned,"
            " handed_in = rollup.handed_in + excluded.handed_in, learners = bits_or(rollup.learners, excluded.learners),"
            " teachers = bits_or(rollup.teachers, excluded.teachers)",
            # sorted: the same order in every transaction
            [(level, start, dim, device_id, ev, asg, hand, to_bits(lb), to_bits(tb))
             for (level, start, dim), (ev, asg, hand, lb, tb) in sorted(cells.items())])


class _Catalogue:
    """Resource metadata and assignment attribution for one batch, each read once."""

    def __init__(self, db: Database, device_id: str) -> None:
        self.db = db
        self.device_id = device_id
        self._dims: dict[str, tuple[str, ...]] = {"": ("*",)}
        self._data: dict[int, dict] = {}
        self._strings: list[str] = []

    def dims(self, resource: str) -> tuple[str, ...]:
        """The dimensions an event about ``resource`` counts in ('*' and, for a resource,
        its subject, grade, kind and itself, as the hub's catalogue has it now)."""
        return self._dims[resource]

    def _load(self, resources: set[str]) -> None:
        ids = sorted(r for r in resources if r not in self._dims)
        metas: dict[str, dict] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            metas |= {rid: json.loads(m) for rid, m in self.db.execute(
                f"select id, meta from hub_resources where id in ({', '.join('?' * len(chunk))})", chunk)}
        for rid in ids:
            m = metas.get(rid, {})
            subject, grade, kind = (str(m.get(k) or "") for k in ("subject", "grade", "kind"))
            self._dims[rid] = ("*", f"s:{subject}", f"g:{grade}", f"k:{kind}", f"r:{rid}")

    def data(self, d: int) -> dict:
        got = self._data.get(d)
        if got is None:
            try:
                got = json.loads(self._strings[d])
            except ValueError:
                got = {}
            self._data[d] = got if isinstance(got, dict) else {}
        return self._data[d]

    def handed_in(self, verb: str, d: int) -> bool:
        """A hand-in, or the first attempt at an exercise (later attempts are not more work handed in)."""
        return verb == "submitted" or self.data(d).get("attempt") == 1

    def resolver(self, batch, first: int) -> dict[tuple[int, int], str]:
        """``{(object idx, data idx): resource id}`` for the events of ``batch`` from ``first`` on
        ('' for none); every resource's metadata and every assignment's resource read up front,
        in a few queries."""
        strings = self._strings = batch.strings
        objects, datas = batch.object[first:], batch.data[first:]
        given = {i for i, v in enumerate(strings) if v == "assigned"}
        assigned: dict[str, str] = {}
        for o, d in compress(zip(objects, datas), map(given.__contains__, batch.verb[first:])):
            assigned[strings[o]] = str(self.data(d).get("resource_id") or "")
        insert_rows(self.db, "rollup_assignments (device_id, assignment, resource)", ("text", "text", "text"),
                    "on conflict (device_id, assignment) do nothing",
                        sorted((self.device_id, obj, res) for obj, res in assigned.items()))
        pairs = set(zip(objects, datas))
        wanted = sorted({strings[o] for o in {o for o, _ in pairs} if strings[o].startswith("assignment:")} - assigned.keys())
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            assigned |= dict(self.db.execute(
                f"select assignment, resource from rollup_assignments where device_id = ? and assignment in"
                f" ({', '.join('?' * len(chunk))})", [self.device_id, *chunk]))
        of: dict[tuple[int, int], str] = {}
        for o, d in pairs:
            obj = strings[o]
            if obj.startswith("resource:"):
                of[(o, d)] = obj[len("resource:"):]
            elif obj.startswith("assignment:"):
                of[(o, d)] = str(self.data(d).get("resource_id") or "") or assigned.get(obj, "")
            else:
                of[(o, d)] = ""
        self._load(set(of.values()))
        return of


def insert_rows(db: Database, into: str, pg_types: Sequence[str], conflict: str, rows: list[Sequence]) -> None:
    """``insert into <into> ... <conflict>`` of many rows in this transaction, written once for
    both engines: on PostgreSQL one statement over ``unnest`` of one array per column
    (``pg_types``: a plan and a round trip for the lot, where an executemany runs one
    statement per row), on SQLite the driver's executemany."""
    if not rows:
        return
    if db.dialect == "postgresql":
        # %b: the arrays go in psycopg's binary format, dumped in C; the default (text, chosen per
        # value) spent more Python on turning the lists into array literals than the rest of ingest
        arrays = ", ".join(f"%b::{t}[]" for t in pg_types)
        raw = db.connection().connection.driver_connection
        with driver_errors(db), raw.cursor() as cur:
            cur.execute(f"insert into {into} select * from unnest({arrays}) {conflict}", [list(c) for c in zip(*rows)])
        return
    marks = ", ".join("?" * len(pg_types))
    raw_executemany(db, f"insert into {into} values ({marks}) {conflict}", rows)


def raw_executemany(db: Database, sql: str, rows: Iterable[Sequence]) -> None:
    """``sql`` (``?`` placeholders) for each of ``rows`` on this transaction's DB-API connection:
    sqlite3's executemany, or psycopg's (pipelined); the hot writes of ingest use it because
    SQLAlchemy's executemany builds a dict per row in Python."""
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return
    raw = db.connection().connection.driver_connection
    if db.dialect == "postgresql":
        with driver_errors(db), raw.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)
    else:
        raw.executemany(sql, rows)
