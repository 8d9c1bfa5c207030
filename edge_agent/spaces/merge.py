"""Conflict rules for records that both the school and the county may change
while the link is down (pure functions, no I/O).

Rule (documented in the README, "Learning spaces"):

* Profiles and classes merge **field by field, three-way**, against ``base``:
  the values both sides last agreed on. A field changed on one side only takes
  that side's value. A field changed on both sides to different values goes to
  the side that is authoritative for it:

  - identity fields (``name``, ``number``, ``gender``, ``grade``) of a person:
    the **county** (the student registry is the legal record);
  - class membership and a class's ``name`` and ``grades``: the **school**
    (the school organises its own classes; the county learns it with the sync).

* Student acts (answers, submissions, imported history) are **append-only** and
  merge as a union by their ``uid``; nothing a student did is ever dropped.
* Progress on a resource merges to the **furthest**: completed beats in
  progress beats not started; within a state, the larger percent and position.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

COUNTY = "county"
SCHOOL = "school"
PERSON_COUNTY_FIELDS = frozenset({"name", "number", "gender", "grade"})
PERSON_SCHOOL_FIELDS = frozenset({"classes"})
CLASS_SCHOOL_FIELDS = frozenset({"name", "grades"})
STATES = ("not_started", "in_progress", "completed")


def merge_fields(base: Mapping[str, Any], school: Mapping[str, Any], county: Mapping[str, Any],
                 county_wins: Iterable[str] = PERSON_COUNTY_FIELDS) -> tuple[dict[str, Any], list[str]]:
    """Three-way merge of one record; return (merged values, fields that conflicted).

    ``county_wins`` names the fields where the county's value wins a real
    conflict; every other field goes to the school.
    """
    county_wins = frozenset(county_wins)
    merged: dict[str, Any] = {}
    conflicts = []
    for key in sorted(set(base) | set(school) | set(county)):
        b, s, c = base.get(key), school.get(key, base.get(key)), county.get(key, base.get(key))
        if s == c or c == b:
            merged[key] = s
        elif s == b:
            merged[key] = c
        else:
            conflicts.append(key)
            merged[key] = c if key in county_wins else s
    return merged, conflicts


def union_by_uid(ours: Iterable[Mapping[str, Any]], theirs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Append-only records from both sides; one copy of each uid, ours first."""
    seen: dict[str, dict[str, Any]] = {}
    for record in list(ours) + list(theirs):
        seen.setdefault(record["uid"], dict(record))
    return sorted(seen.values(), key=lambda r: (r.get("created_at", 0), r["uid"]))


def merge_progress(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> dict[str, Any]:
    """The furthest of two progress records for the same student and resource."""
    if a is None or b is None:
        return dict(a or b or {"state": "not_started", "percent": 0.0, "position": 0.0})
    rank = lambda p: (STATES.index(p.get("state", "not_started")), p.get("percent", 0.0), p.get("position", 0.0))  # noqa: E731
    best = a if rank(a) >= rank(b) else b
    other = b if best is a else a
    out = dict(best)
    out["percent"] = max(a.get("percent", 0.0), b.get("percent", 0.0))
    out["position"] = max(a.get("position", 0.0), b.get("position", 0.0))
    out["updated_at"] = max(best.get("updated_at", 0), other.get("updated_at", 0))
    return out
