"""Exercise sets: the JSON format of ``sample_library.exercise_set`` and pure grading.

    {"title": ..., "subject": ..., "attempts": 3,      # 0 or absent: unlimited
     "questions": [
       {"id": "q1", "type": "single", "prompt": ..., "options": [...], "answer": [1]},
       {"id": "q2", "type": "truefalse", "prompt": ..., "answer": true},
       {"id": "q3", "type": "multiple", "prompt": ..., "options": [...], "answer": [0, 2]},
       {"id": "q4", "type": "fill", "prompt": ..., "answer": ["12", "十二"]}]}

A fill-in answer matches any accepted string after NFKC normalisation (full-width
and half-width characters alike), trimming, collapsing spaces and case-folding.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from edge_agent.errors import BadRequestError

TYPES = ("single", "multiple", "truefalse", "fill")
TRUE_WORDS = {"true", "t", "yes", "1", "对", "正确", "√", "是"}
FALSE_WORDS = {"false", "f", "no", "0", "错", "错误", "×", "否"}


def load_exercise(data: bytes) -> dict[str, Any]:
    """Parse and check an exercise set; BadRequestError if it is not one."""
    try:
        ex = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError("练习文件不是有效的 JSON", "exercise file is not valid JSON") from exc
    questions = ex.get("questions") if isinstance(ex, dict) else None
    if not isinstance(questions, list) or not questions:
        raise BadRequestError("练习里没有题目", "exercise has no questions")
    ids = set()
    for q in questions:
        if not isinstance(q, dict) or q.get("type") not in TYPES or not q.get("id") or q["id"] in ids or "answer" not in q:
            raise BadRequestError(f"题目格式不对：{q!r:.60}", f"malformed question: {q!r:.60}")
        ids.add(q["id"])
    return ex


def normalise_text(text: Any) -> str:
    """Full-width -> half-width (NFKC), trimmed, spaces collapsed, Latin case-folded."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).split()).casefold()


# What a student's copy of a question holds. An allow-list, not "all but answer": an
# exercise from elsewhere may carry its key under another name (solution, explanation).
QUESTION_FIELDS = ("id", "type", "prompt", "options")


def public_questions(ex: dict[str, Any]) -> list[dict[str, Any]]:
    """The questions as a student sees them: prompt and options only, never answers or keys."""
    return [{k: q[k] for k in QUESTION_FIELDS if k in q} for q in ex["questions"]]


def answer_key(ex: dict[str, Any]) -> dict[str, Any]:
    """Question id -> accepted answer, for teachers only."""
    return {q["id"]: q["answer"] for q in ex["questions"]}


def _as_indices(value: Any) -> set[int] | None:
    values = value if isinstance(value, list) else [value]
    try:
        return {int(v) for v in values if not isinstance(v, bool)} if values else set()
    except (TypeError, ValueError):
        return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    word = normalise_text(value)
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def is_correct(question: dict[str, Any], given: Any) -> bool:
    """Whether ``given`` answers ``question`` correctly (pure)."""
    if given is None:
        return False
    kind, answer = question["type"], question["answer"]
    if kind == "single":
        got = _as_indices(given)
        return got is not None and len(got) == 1 and got == _as_indices(answer)
    if kind == "multiple":
        got = _as_indices(given)
        return got is not None and got == _as_indices(answer)
    if kind == "truefalse":
        got = _as_bool(given)
        return got is not None and got == bool(answer)
    accepted = answer if isinstance(answer, list) else [answer]
    return normalise_text(given) in {normalise_text(a) for a in accepted}


def grade(ex: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """Score one attempt: one point per correct question."""
    if not isinstance(answers, dict):
        raise BadRequestError("answers 应为 {题号: 答案}", "answers must be an object {question id: answer}")
    unknown = set(answers) - {q["id"] for q in ex["questions"]}
    if unknown:
        raise BadRequestError(f"没有这些题目：{', '.join(sorted(unknown))}", f"no such question(s): {', '.join(sorted(unknown))}")
    results = {q["id"]: is_correct(q, answers.get(q["id"])) for q in ex["questions"]}
    return {"score": float(sum(results.values())), "total": float(len(results)), "results": results}


def attempts_allowed(ex: dict[str, Any]) -> int:
    """How many attempts a student gets (0 = unlimited)."""
    try:
        return max(0, int(ex.get("attempts", 1)))
    except (TypeError, ValueError):
        return 1
