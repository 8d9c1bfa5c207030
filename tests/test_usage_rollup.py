"""Usage roll-ups kept at ingest: they match a brute-force count over the raw events for
random synthetic data, never count a batch twice, and the report queries read only them."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import pytest

from fixtures.common import SCHOOL
from hub_sync.core.errors import ReplayError
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.formats.envelope import seal
from hub_sync.formats.usage_batch import UsageEvent, batch_hash, encode_batch
from hub_sync.hub.channels import Channels
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.registry import Registry
from hub_sync.hub.reports import Period, ReportError, Reports, Scope, cover
from hub_sync.hub.rollup import LEARNER_VERBS, TEACHER_VERBS, UTC_OFFSET_S

SUBJECTS, GRADES, KINDS = ("语文", "数学", "英语"), ("一年级", "三年级"), ("video", "pdf")
START = datetime(2026, 8, 24, tzinfo=timezone.utc).timestamp()  # a Monday (county time) minus 8 h
DEVICES = (("edge-a", SCHOOL), ("edge-b", SCHOOL), ("edge-c", "4401020399"))


def resources(hub) -> list[str]:
    ch = Channels(hub.db)
    ch.put_channel("c1", "测试", True)
    ids = []
    for i in range(12):
        rid = f"res-{i}"
        meta = {"title": f"资源{i}", "subject": SUBJECTS[i % 3], "grade": GRADES[i % 2], "kind": KINDS[i % 2]}
        if i == 11:
            meta = {"title": "无分类"}
        hub.db.execute("insert into hub_resources (id, channel, meta, files, updated_at) values (?, 'c1', ?, '[]', 0)",
                       [rid, json.dumps(meta, ensure_ascii=False)])
        ids.append(rid)
    return ids + ["res-local-upload"]  # a teacher's own upload the hub does not know


def synthetic(rnd: random.Random, res: list[str], n: int) -> list[tuple]:
    """(actor, verb, object, data, ts): students do learner verbs, teachers teacher verbs (fixed roles)."""
    out, ts = [], START
    students = [f"person:{i}" for i in range(1, 40)]
    teachers = [f"person:{i}" for i in range(100, 104)]
    aid = 0
    for _ in range(n):
        ts += rnd.expovariate(1 / 900)  # ~40 days for 4,000 events
        r = rnd.random()
        if r < 0.08:
            aid += 1
            out.append((rnd.choice(teachers), "assigned", f"assignment:{aid}", {"resource_id": rnd.choice(res + [None])}, ts))
        elif r < 0.12 and aid:
            out.append((rnd.choice(teachers), rnd.choice(("graded", "shared")), f"submission:s{aid}", {}, ts))
        elif r < 0.2 and aid:
            out.append((rnd.choice(students), "submitted", f"assignment:{rnd.randint(1, aid)}", {"uid": "x"}, ts))
        elif r < 0.27 and aid:
            a = rnd.randint(1, aid)
            out.append((rnd.choice(students), "answered", f"assignment:{a}", {"attempt": rnd.choice((1, 1, 2)),
                                                                              "resource_id": None}, ts))
        elif r < 0.3:
            out.append((rnd.choice(students + teachers), "logged_in", "person:x", {}, ts))
        else:
            out.append((rnd.choice(students[: rnd.choice((3, 39))]), rnd.choice(("viewed", "progressed", "completed")),
                        f"resource:{rnd.choice(res)}", {}, ts))
    return out


@pytest.fixture
def usage(hub, tmp_path):
    """Three devices' random usage ingested in random chained batches; returns the raw events."""
    rnd = random.Random(7)
    res = resources(hub)
    raw = {}
    ingest = UsageIngest(hub.db)
    for device, school in DEVICES:
        signer = generate_key(tmp_path / f"{device}.pem")
        Registry(hub.db).register(device, school, public_key_dict(signer))
        acts = synthetic(rnd, res, 1500)
        events = [UsageEvent(i + 1, ts, a, v, o, d) for i, (a, v, o, d, ts) in enumerate(acts)]
        raw[device] = (school, events)
        prev, i = "", 0
        while i < len(events):
            n = rnd.randint(1, 300)
            payload = encode_batch(events[i:i + n], device, school, prev)
            ingest.ingest(seal("usage-batch", payload, signer))
            prev, i = batch_hash(payload), i + n
    return raw, res


def day_of(ts: float) -> date:
    return datetime.fromtimestamp(ts + UTC_OFFSET_S, tz=timezone.utc).date()


def brute(hub, raw, period: Period, devices: set[str]) -> dict:
    """Everything a report shows, counted from the raw events (the way the roll-ups must agree with)."""
    meta = {r: json.loads(m) for r, m in hub.db.execute("select id, meta from hub_resources")}
    out = {"events": 0, "assigned": 0, "handed_in": 0, "learners": set(), "teachers": set(),
           "subject": defaultdict(lambda: [0, set()]), "resource": defaultdict(lambda: [0, set()])}
    for device, (_, events) in raw.items():
        if device not in devices:
            continue
        teachers = {e.actor for e in events if e.verb in TEACHER_VERBS}
        assignment = {e.object: e.data.get("resource_id") or "" for e in events if e.verb == "assigned"}
        for e in events:
            if not period.first <= day_of(e.ts) <= period.last:
                continue
            res = e.object[9:] if e.object.startswith("resource:") else (
                (e.data.get("resource_id") or assignment.get(e.object, "")) if e.object.startswith("assignment:") else "")
            out["events"] += 1
            out["assigned"] += e.verb == "assigned"
            out["handed_in"] += e.verb == "submitted" or (e.verb == "answered" and e.data.get("attempt") == 1)
            who = (device, e.actor)
            learner = e.verb in LEARNER_VERBS and e.actor not in teachers
            if e.actor in teachers:
                out["teachers"].add(who)
            elif learner:
                out["learners"].add(who)
            if res:
                for key, value in (("subject", meta.get(res, {}).get("subject", "")), ("resource", res)):
                    out[key][value][0] += 1
                    if learner:
                        out[key][value][1].add(who)
    return out


PERIODS = [("2026-08-24", "2026-10-10"), ("2026-08-27", "2026-09-15"), ("2026-09-01", "2026-09-30"),
           ("2026-09-07", "2026-09-07"), ("2026-08-31", "2026-09-13")]


@pytest.mark.parametrize("first,last", PERIODS)
def test_rollups_match_a_brute_force_count_over_the_raw_events(hub, usage, first, last):
    raw, _ = usage
    reports = Reports(hub.db)
    period = Period.parse(first, last)
    for scope, devices in ((Scope(), {"edge-a", "edge-b", "edge-c"}), (Scope("school", SCHOOL), {"edge-a", "edge-b"})):
        want = brute(hub, raw, period, devices)
        got = reports.totals(period, scope)
        assert got == {"events": want["events"], "assigned": want["assigned"], "handed_in": want["handed_in"],
                       "learners": len(want["learners"]), "teachers": len(want["teachers"])}
        assert {r["value"]: (r["events"], r["learners"]) for r in reports.by(period, scope, "subject")} == \
            {k: (v[0], len(v[1])) for k, v in want["subject"].items()}
        assert {r["resource"]: (r["events"], r["learners"]) for r in reports.resources(period, scope, None)} == \
            {k: (v[0], len(v[1])) for k, v in want["resource"].items()}
    assert want["events"] > 0


def test_weekly_rows_add_up_to_the_period_and_buckets_cover_it_exactly(hub, usage):
    reports = Reports(hub.db)
    period = Period.parse("2026-08-27", "2026-10-03")
    weeks = reports.weekly(period, Scope())
    assert weeks[0]["first"] == date(2026, 8, 27) and weeks[-1]["last"] == date(2026, 10, 3)
    assert sum(w["events"] for w in weeks) == reports.totals(period, Scope())["events"]
    days = []
    for level, start in cover(period):
        first = date(1970, 1, 1) + timedelta(days=start)
        n = {"d": 1, "w": 7}.get(level) or ((first.replace(month=first.month % 12 + 1, day=1) if first.month < 12
                                              else first.replace(year=first.year + 1, month=1, day=1)) - first).days
        days += [first + timedelta(days=i) for i in range(n)]
    assert days == [period.first + timedelta(days=i) for i in range(period.days)]
    assert ("m", (date(2026, 9, 1) - date(1970, 1, 1)).days) in cover(period)


def test_the_same_batch_twice_or_a_replay_does_not_count_again(hub, tmp_path):
    res = resources(hub)
    signer = generate_key(tmp_path / "d.pem")
    Registry(hub.db).register("edge-a", SCHOOL, public_key_dict(signer))
    events = [UsageEvent(i + 1, START + 3600 * 24 + i, f"person:{i % 7}", "viewed", f"resource:{res[i % 3]}", {})
              for i in range(50)]
    ingest = UsageIngest(hub.db)
    first = encode_batch(events[:30], "edge-a", SCHOOL)
    env1 = seal("usage-batch", first, signer)
    ingest.ingest(env1)
    before = [hub.db.execute(f"select * from {t} order by 1, 2, 3, 4").fetchall() for t in ("rollup", "rollup_people")]
    ingest.ingest(env1)  # the same batch again
    assert [hub.db.execute(f"select * from {t} order by 1, 2, 3, 4").fetchall()
            for t in ("rollup", "rollup_people")] == before
    # a resend overlapping what is held (20-50 after 1-30 was stored) adds only 31-50
    overlap = encode_batch(events[19:], "edge-a", SCHOOL, batch_hash(encode_batch(events[:19], "edge-a", SCHOOL)))
    with pytest.raises(ReplayError):  # it does not chain to a batch the hub holds: refused, nothing changed
        ingest.ingest(seal("usage-batch", overlap, signer))
    rest = encode_batch(events[30:], "edge-a", SCHOOL, batch_hash(first))
    ingest.ingest(seal("usage-batch", rest, signer))
    ingest.ingest(seal("usage-batch", rest, signer))
    period = Period.parse("2026-08-20", "2026-08-30")
    assert Reports(hub.db).totals(period, Scope()) == {"events": 50, "learners": 7, "teachers": 0, "assigned": 0,
                                                        "handed_in": 0}


def test_a_period_with_no_data_answers_zeros_not_errors(hub, usage):
    reports = Reports(hub.db)
    period = Period.parse("2030-01-01", "2030-01-31")
    assert reports.totals(period, Scope()) == {"events": 0, "learners": 0, "teachers": 0, "assigned": 0, "handed_in": 0}
    assert reports.by(period, Scope(), "kind") == [] and reports.resources(period, Scope()) == []
    assert all(w["events"] == 0 for w in reports.weekly(period, Scope()))


@pytest.mark.parametrize("first,last,message", [
    ("2026-09-10", "2026-09-01", "after the last day"), ("2026-13-01", "2026-12-01", "YYYY-MM-DD"),
    ("yesterday", None, "YYYY-MM-DD"), ("2020-01-01", "2026-01-01", "at most three years")])
def test_reversed_or_invalid_dates_are_refused_with_a_clear_message(first, last, message):
    with pytest.raises(ReportError) as err:
        Period.parse(first, last)
    assert message in err.value.en and err.value.http_status == 400
