"""Journal events as xAPI statements (pure), for learning-record tools that speak xAPI.

Each event becomes one statement (xAPI 1.0.3):

* ``id``: a UUID derived from (device, seq), so exporting twice gives the same ids
  and an LRS stores each statement once;
* ``actor``: an Agent with an ``account`` (``name`` = the learner's id,
  ``homePage`` = the school's page built from ``XAPI_SCHOOL_HOMEPAGE``);
* ``verb``: an ADL / well-known vocabulary IRI where one exists (``VERB_IRIS``),
  otherwise one under ``XAPI_BASE``;
* ``object``: an Activity whose id is ``XAPI_BASE/resources/<object id>``;
* ``result``: from the event's data (``correct`` -> success, ``answer`` -> response,
  ``score`` -> score.raw, ``s`` -> duration, ``pct`` -> the cmi5 progress extension);
  any other data travels in a result extension;
* ``context``: platform, device and sequence number (the order; the timestamp is the
  device's clock and may be wrong).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import quote

XAPI_VERSION = "1.0.3"
XAPI_BASE = "https://school-edge.invalid/xapi"
XAPI_SCHOOL_HOMEPAGE = "https://school-edge.invalid/schools/{school_code}"
_NAMESPACE = uuid.UUID("5b0c2d1e-8f4a-4c7e-9a51-3f6d2b7c9e10")
_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"

VERB_IRIS = {
    "viewed": ("http://id.tincanapi.com/verb/viewed", "浏览", "viewed"),
    "progressed": ("http://adlnet.gov/expapi/verbs/progressed", "进度", "progressed"),
    "completed": ("http://adlnet.gov/expapi/verbs/completed", "完成", "completed"),
    "answered": ("http://adlnet.gov/expapi/verbs/answered", "作答", "answered"),
    "submitted": ("http://activitystrea.ms/schema/1.0/submit", "提交", "submitted"),
    "graded": ("http://adlnet.gov/expapi/verbs/scored", "评分", "scored"),
    "shared": ("http://adlnet.gov/expapi/verbs/shared", "分享", "shared"),
    "logged_in": ("https://w3id.org/xapi/adl/verbs/logged-in", "登录", "logged in"),
    "logged_out": ("https://w3id.org/xapi/adl/verbs/logged-out", "退出", "logged out"),
}


def statement(event: Any, device_id: str, school_code: str) -> dict:
    """One xAPI statement for one journal event (an object with seq, ts, actor, verb, object, data)."""
    iri, zh, en = VERB_IRIS.get(event.verb, (f"{XAPI_BASE}/verbs/{quote(event.verb)}", event.verb, event.verb))
    data = dict(event.data or {})
    result: dict[str, Any] = {}
    if "correct" in data:
        result["success"] = bool(data.pop("correct"))
    if "answer" in data:
        result["response"] = str(data.pop("answer"))
    if isinstance(data.get("score"), (int, float)):
        result["score"] = {"raw": data.pop("score")}
    if isinstance(data.get("s"), (int, float)):
        result["duration"] = f"PT{data.pop('s')}S"
    if isinstance(data.get("pct"), (int, float)):
        result.setdefault("extensions", {})[_PROGRESS] = data.pop("pct")
    if event.verb == "completed":
        result["completion"] = True
    if data:
        result.setdefault("extensions", {})[f"{XAPI_BASE}/extensions/data"] = data
    out = {
        "id": str(uuid.uuid5(_NAMESPACE, f"{device_id}:{event.seq}")),
        "actor": {"objectType": "Agent",
                  "account": {"homePage": XAPI_SCHOOL_HOMEPAGE.format(school_code=quote(school_code or "unknown")),
                              "name": event.actor}},
        "verb": {"id": iri, "display": {"zh-CN": zh, "en-US": en}},
        "object": {"objectType": "Activity", "id": f"{XAPI_BASE}/resources/{quote(event.object, safe='')}"},
        "timestamp": datetime.fromtimestamp(event.ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "context": {"platform": "school-edge", "extensions": {
            f"{XAPI_BASE}/extensions/device": device_id, f"{XAPI_BASE}/extensions/seq": event.seq}},
        "version": XAPI_VERSION,
    }
    if result:
        out["result"] = result
    return out


def statements(events: Iterable[Any], device_id: str, school_code: str) -> list[dict]:
    """xAPI statements for events, in sequence order."""
    return [statement(e, device_id, school_code) for e in events]
