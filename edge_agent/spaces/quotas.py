"""How much each person may keep on the appliance: a student's hand-ins (files and
text), a teacher's own uploaded resources.

The limits are settings (``student_quota_mb``, ``teacher_quota_mb``; 0: no limit).
A refusal is ``QuotaError`` (HTTP 413 with a JSON body saying what is used and
what the limit is), raised before any byte is stored. The callers check again
inside their write transaction with ``check``, so two uploads sent at the same
moment cannot both slip under the limit; the one refused there removes the blobs
it had just added (``forget_new_blobs``), so a refusal never leaves anything behind.
"""

from __future__ import annotations

from typing import Iterable

import sqlite_utils

from hub_sync.core.blobstore import BlobStore

from edge_agent.const import MIB
from edge_agent.spaces.errors import QuotaError


def student_usage(db: sqlite_utils.Database, student_id: int) -> int:
    """Bytes a student's hand-ins take: their files and their text."""
    files = db.execute("select coalesce(sum(json_extract(f.value, '$.size')), 0) from submissions s, json_each(s.files) f"
                       " where s.person_id = ?", [student_id]).fetchone()[0]
    text = db.execute("select coalesce(sum(length(cast(text as blob))), 0) from submissions where person_id = ?",
                      [student_id]).fetchone()[0]
    return int(files) + int(text)


def teacher_usage(db: sqlite_utils.Database, teacher_id: int) -> int:
    """Bytes a teacher's own resources take."""
    return int(db.execute("select coalesce(sum(r.size), 0) from teacher_resources t join resources r on r.id = t.resource_id"
                          " where t.teacher_id = ?", [teacher_id]).fetchone()[0])


def check_student(db: sqlite_utils.Database, student_id: int, incoming: int, limit_bytes: int) -> None:
    """QuotaError if handing in ``incoming`` more bytes would pass the student's limit."""
    if limit_bytes > 0:
        used = student_usage(db, student_id)
        if used + incoming > limit_bytes:
            raise QuotaError(
                f"你的作业空间满了：已用 {_mb(used)} MB，上限 {_mb(limit_bytes)} MB，这次要交 {_mb(incoming)} MB。"
                "请拍小一点的照片，或请老师联系管理员",
                f"your hand-in space is full: {_mb(used)} MB used of {_mb(limit_bytes)} MB, this hand-in needs "
                f"{_mb(incoming)} MB; take a smaller photo or ask your teacher to contact the administrator",
                used_bytes=used, limit_bytes=limit_bytes, incoming_bytes=incoming)


def check_teacher(db: sqlite_utils.Database, teacher_id: int, incoming: int, limit_bytes: int) -> None:
    """QuotaError if uploading ``incoming`` more bytes would pass the teacher's limit."""
    if limit_bytes > 0:
        used = teacher_usage(db, teacher_id)
        if used + incoming > limit_bytes:
            raise QuotaError(
                f"你的上传空间满了：已用 {_mb(used)} MB，上限 {_mb(limit_bytes)} MB，这个文件 {_mb(incoming)} MB。"
                "请联系管理员提高上限（设置 teacher_quota_mb）",
                f"your upload space is full: {_mb(used)} MB used of {_mb(limit_bytes)} MB, this file is "
                f"{_mb(incoming)} MB; ask the administrator to raise the limit (setting teacher_quota_mb)",
                used_bytes=used, limit_bytes=limit_bytes, incoming_bytes=incoming)


def new_blobs(store: BlobStore, hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` the store does not hold yet (taken before storing them)."""
    return {h for h in hashes if not store.has(h)}


def forget_new_blobs(db: sqlite_utils.Database, store: BlobStore, added: set[str]) -> None:
    """Remove blobs a refused upload had just added, unless something refers to them by now."""
    for sha in added:
        in_catalogue = db.execute("select 1 from resource_files where sha256 = ? limit 1", [sha]).fetchone()
        in_work = db.execute("select 1 from submissions s, json_each(s.files) f"
                             " where json_extract(f.value, '$.sha256') = ? limit 1", [sha]).fetchone()
        if not in_catalogue and not in_work:
            store.remove(sha)


def _mb(n: int) -> str:
    return f"{n / MIB:.1f}"
