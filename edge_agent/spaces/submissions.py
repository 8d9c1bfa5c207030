"""Work handed in by students (text and photos or files) and teachers' grading."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import sqlite_utils

from hub_sync.core.blobstore import BlobStore
from hub_sync.core.sqlite_db import transaction

from edge_agent.errors import BadRequestError, NotFoundError
from edge_agent.journal import Journal
from edge_agent.spaces import const, quotas
from edge_agent.spaces.assignments import check_open
from edge_agent.spaces.errors import QuotaError
from edge_agent.spaces.filetypes import check_size, sniff
from edge_agent.spaces.people import Person
from edge_agent.spaces.upload_spool import Spooled, as_spooled

COLS = ("id", "uid", "assignment_id", "person_id", "text", "files", "created_at", "score", "comment", "graded_by", "graded_at")


def get_submission(db: sqlite_utils.Database, submission_id: int) -> dict[str, Any]:
    row = db.execute(f"select {', '.join(COLS)} from submissions where id = ?", [submission_id]).fetchone()
    if row is None:
        raise NotFoundError(f"找不到提交 {submission_id}", f"no submission {submission_id}")
    s = dict(zip(COLS, row))
    s["files"] = json.loads(s["files"])
    return s


def submit_work(db: sqlite_utils.Database, store: BlobStore, student: Person, assignment: dict[str, Any], text: str,
                files: list[tuple[str, bytes | Spooled]], max_bytes: int, quota_bytes: int = 0) -> dict[str, Any]:
    """Keep one hand-in: every file checked (size, real type) and the student's
    quota (``quota_bytes``, 0: none) checked before anything is stored. A file is its
    bytes or, from a request, spooled to disk (``upload_spool``)."""
    check_open(assignment)
    text = (text or "").strip()
    if not text and not files:
        raise BadRequestError("提交内容是空的：请写几句话或附上照片/文件", "nothing handed in: write some text or attach a photo or file")
    if len(text) > const.SUBMISSION_TEXT_MAX_CHARS:
        raise BadRequestError("文字太长", f"text longer than {const.SUBMISSION_TEXT_MAX_CHARS} characters")
    if len(files) > const.SUBMISSION_MAX_FILES:
        raise BadRequestError(f"最多附 {const.SUBMISSION_MAX_FILES} 个文件", f"at most {const.SUBMISSION_MAX_FILES} files")
    checked = []
    for name, data in files:
        upload = as_spooled(name, data)
        check_size(upload.size, max_bytes)
        checked.append((name, upload, sniff(upload.head, complete=upload.complete_head)[0]))
    incoming = sum(u.size for _, u, _ in checked) + len(text.encode("utf-8"))
    quotas.check_student(db, student.id, incoming, quota_bytes)
    store.check_space(incoming)
    added = quotas.new_blobs(store, (u.sha256 for _, u, _ in checked))
    stored = [{"name": name[-100:] or "file", "sha256": upload.put(store).sha256, "size": upload.size, "mime": mime}
              for name, upload, mime in checked]
    uid = f"sub-{secrets.token_hex(8)}"
    try:
        with transaction(db):
            quotas.check_student(db, student.id, incoming, quota_bytes)  # again, under the write lock
            sid = _insert(db, uid, student, assignment, text, stored)
    except QuotaError:
        quotas.forget_new_blobs(db, store, added)
        raise
    return get_submission(db, sid)


def _insert(db: sqlite_utils.Database, uid: str, student: Person, assignment: dict[str, Any], text: str,
            stored: list[dict[str, Any]]) -> int:
    """Record a hand-in whose files are stored (inside the caller's transaction)."""
    sid = db.execute("insert into submissions (uid, assignment_id, person_id, text, files, created_at) values (?, ?, ?, ?, ?, ?)",
                     [uid, assignment["id"], student.id, text, json.dumps(stored, ensure_ascii=False), time.time()]).lastrowid
    Journal(db).append(f"person:{student.id}", "submitted", f"assignment:{assignment['id']}",
                       {"uid": uid, "files": [{"sha256": f["sha256"], "size": f["size"], "mime": f["mime"]} for f in stored],
                        "chars": len(text)})
    return sid


def grade_submission(db: sqlite_utils.Database, teacher: Person, submission: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    score = body.get("score")
    if score is not None and (not isinstance(score, (int, float)) or isinstance(score, bool) or not 0 <= score <= 100):
        raise BadRequestError("分数应在 0 到 100 之间", "score must be between 0 and 100")
    comment = str(body.get("comment") or "")[: const.MESSAGE_MAX_CHARS]
    with transaction(db):
        db.execute("update submissions set score = ?, comment = ?, graded_by = ?, graded_at = ? where id = ?",
                   [score, comment, teacher.id, time.time(), submission["id"]])
        Journal(db).append(f"person:{teacher.id}", "graded", f"submission:{submission['uid']}",
                           {"score": score, "comment_chars": len(comment), "student": submission["person_id"]})
    return get_submission(db, submission["id"])


def submissions_for(db: sqlite_utils.Database, assignment_id: int, student_id: int | None = None) -> list[dict[str, Any]]:
    sql = f"select {', '.join(COLS)} from submissions where assignment_id = ?"
    params: list = [assignment_id]
    if student_id is not None:
        sql += " and person_id = ?"
        params.append(student_id)
    out = []
    for row in db.execute(sql + " order by created_at", params):
        s = dict(zip(COLS, row))
        s["files"] = json.loads(s["files"])
        out.append(s)
    return out
