"""Journal events as xAPI statements (pure), for learning-record tools that speak xAPI.

Each event becomes one statement (xAPI 1.0.3):

* ``id``: a UUID derived from the device, the sequence number and the event
  (``statement_id``: uuid5 in ``STATEMENT_ID_NAMESPACE``), so exporting or relaying
  twice gives the same ids and an LRS stores each statement once;
* ``actor``: an Agent with an ``account`` (``name`` = the learner's id,
  ``homePage`` = the school's page built from ``XAPI_SCHOOL_HOMEPAGE``);
* ``verb``: ADL's vocabulary IRI where ADL has the verb (``VERB_IRIS``), otherwise one
  in the project's own namespace ``XAPI_BASE`` (every IRI is listed in docs/xapi.md);
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
# The project's own namespace (a w3id.org permanent identifier; docs/xapi.md lists what is under it):
# verbs ADL has no word for, activities, extensions, school home pages.
XAPI_BASE = "https://w3id.org/school-edge/xapi"
XAPI_SCHOOL_HOMEPAGE = XAPI_BASE + "/schools/{school_code}"
ADL_VERBS = "http://adlnet.gov/expapi/verbs/"
ADL_W3ID_VERBS = "https://w3id.org/xapi/adl/verbs/"  # ADL's newer verbs (logged-in, logged-out ...)
# statement ids are uuid5(STATEMENT_ID_NAMESPACE, "<device>/<seq>/<actor>/<verb>/<object>")
STATEMENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, XAPI_BASE + "/statement-ids")
_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"

# journal verb -> (IRI, zh-CN display, en-US display)
VERB_IRIS = {
    "viewed": (ADL_VERBS + "experienced", "浏览", "experienced"),
    "progressed": (ADL_VERBS + "progressed", "进度", "progressed"),
    "completed": (ADL_VERBS + "completed", "完成", "completed"),
    "answered": (ADL_VERBS + "answered", "作答", "answered"),
    "submitted": (XAPI_BASE + "/verbs/submitted", "提交", "submitted"),
    "graded": (ADL_VERBS + "scored", "评分", "scored"),
    "shared": (ADL_VERBS + "shared", "分享", "shared"),
    "logged_in": (ADL_W3ID_VERBS + "logged-in", "登录", "logged in"),
    "logged_out": (ADL_W3ID_VERBS + "logged-out", "退出", "logged out"),
}


def statement_id(device_id: str, event: Any) -> str:
    """The statement id of ``event`` from ``device_id``: the same event always gives the same id
    (a repeat is a no-op at the LRS); another device, sequence number or event another id."""
    # not the time: the journal keeps microseconds, a usage batch milliseconds; an export from the
    # appliance and the hub's relay give the same ids
    name = "/".join(quote(str(part), safe="") for part in (device_id, event.seq, event.actor, event.verb, event.object))
    return str(uuid.uuid5(STATEMENT_ID_NAMESPACE, name))


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
        "id": statement_id(device_id, event),
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
