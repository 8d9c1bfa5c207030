"""Teachers' own resources: uploaded with curriculum metadata, in the school
library at once (source ``teacher``), optionally offered to the county.

Offering marks the resource ``offered`` and journals a ``shared`` event, so it
rides up with the usage sync into the hub's review queue. The sync later sets
``pending``, ``approved`` or ``rejected`` with ``set_share_status``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import sqlite_utils

from hub_sync.core.blobstore import BlobStore, StoredBlob
from hub_sync.core.sqlite_db import transaction

from edge_agent.library.catalogue import Catalogue, Resource, ResourceFile, validate
from edge_agent.errors import BadRequestError, NotFoundError
from edge_agent.journal import Journal
from edge_agent.spaces import quotas
from edge_agent.spaces.errors import ConflictError, QuotaError
from edge_agent.spaces.exercises import load_exercise
from edge_agent.spaces.filetypes import check_size, sniff
from edge_agent.spaces.people import Person
from edge_agent.spaces.upload_spool import Spooled, as_spooled

SHARE_STATES = ("private", "offered", "pending", "approved", "rejected")
META = ("stage", "grade", "subject", "edition", "chapter", "description", "keywords")
EXERCISE_MAX_BYTES = 8 * 1024 * 1024  # an exercise set is parsed whole: questions, not media


def upload_resource(db: sqlite_utils.Database, store: BlobStore, teacher: Person, name: str, data: bytes | Spooled,
                    meta: dict[str, str], max_bytes: int, quota_bytes: int = 0) -> dict[str, Any]:
    """Check, store and catalogue one teacher file; an exercise set is a JSON file in the exercise format.
    The teacher's quota (``quota_bytes``, 0: none) is checked before anything is stored. ``data``
    is the file's bytes or, from a request, the file spooled to disk (``upload_spool``)."""
    upload = as_spooled(name, data)
    check_size(upload.size, max_bytes)
    if (meta.get("kind") or "") == "exercise":
        load_exercise(upload.read(EXERCISE_MAX_BYTES))  # BadRequestError if it is not a valid exercise set
        mime, kind = "application/json", "exercise"
        name = (name.rsplit(".", 1)[0] or "exercise") + ".json"
    else:
        mime, kind = sniff(upload.head, complete=upload.complete_head)
    title = (meta.get("title") or "").strip()
    if not title:
        raise BadRequestError("请填写资源标题", "give the resource a title")
    resource = Resource(id="t-" + secrets.token_hex(6), title=title, kind=kind, source="teacher",
                        files=[ResourceFile(_safe_name(name), "0" * 64, upload.size, mime)],
                        **{k: str(meta.get(k) or "").strip() for k in META})
    validate(resource)  # before any byte is written
    quotas.check_teacher(db, teacher.id, upload.size, quota_bytes)
    store.check_space(upload.size)
    added = quotas.new_blobs(store, [upload.sha256])
    blob = upload.put(store)
    resource.files = [ResourceFile(resource.files[0].path, blob.sha256, blob.size, mime)]
    try:
        with transaction(db):
            quotas.check_teacher(db, teacher.id, upload.size, quota_bytes)  # again, under the write lock
            _catalogue(db, teacher, resource, blob, title, kind, mime)
    except QuotaError:
        quotas.forget_new_blobs(db, store, added)
        raise
    return own_resource(db, resource.id)


def _catalogue(db: sqlite_utils.Database, teacher: Person, resource: Resource, blob: StoredBlob, title: str, kind: str,
               mime: str) -> None:
    """Catalogue a stored upload as the teacher's (inside the caller's transaction)."""
    Catalogue(db).upsert(resource)
    db.execute("insert into teacher_resources (resource_id, teacher_id, share_status, updated_at) values (?, ?, 'private', ?)",
               [resource.id, teacher.id, time.time()])
    Journal(db).append(f"person:{teacher.id}", "uploaded", f"resource:{resource.id}",
                       {"title": title, "kind": kind, "sha256": blob.sha256, "size": blob.size, "mime": mime,
                        **{k: getattr(resource, k) for k in ("stage", "grade", "subject", "edition", "chapter")}})


def _safe_name(name: str) -> str:
    base = (name or "file").replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    return base[-100:] or "file"


def own_resource(db: sqlite_utils.Database, resource_id: str) -> dict[str, Any]:
    row = db.execute("select t.resource_id, t.teacher_id, t.share_status, t.status_note, t.updated_at, r.title, r.kind"
                     " from teacher_resources t join resources r on r.id = t.resource_id where t.resource_id = ?",
                     [resource_id]).fetchone()
    if row is None:
        raise NotFoundError(f"找不到教师资源 {resource_id}", f"no teacher resource {resource_id}")
    return dict(zip(("resource_id", "teacher_id", "share_status", "status_note", "updated_at", "title", "kind"), row))


def own_resources(db: sqlite_utils.Database, teacher_id: int) -> list[dict[str, Any]]:
    ids = [r[0] for r in db.execute("select resource_id from teacher_resources where teacher_id = ? order by updated_at desc", [teacher_id])]
    return [own_resource(db, i) for i in ids]


def offer_to_county(db: sqlite_utils.Database, teacher: Person, resource_id: str) -> dict[str, Any]:
    """Send a teacher's resource up for county review (with the next usage sync)."""
    with transaction(db):
        current = own_resource(db, resource_id)
        if current["share_status"] not in ("private", "rejected"):
            raise ConflictError(f"该资源已提交县平台（状态：{current['share_status']}）",
                                f"already offered to the county (status {current['share_status']})")
        resource = Catalogue(db).get(resource_id)
        db.execute("update teacher_resources set share_status = 'offered', status_note = '', updated_at = ? where resource_id = ?",
                   [time.time(), resource_id])
        Journal(db).append(f"person:{teacher.id}", "shared", f"resource:{resource_id}",
                           {"title": resource.title, "kind": resource.kind, "uploader": teacher.name,
                            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size, "mime": f.mime} for f in resource.files],
                            **{k: getattr(resource, k) for k in ("stage", "grade", "subject", "edition", "chapter", "description")}})
    return own_resource(db, resource_id)


def set_share_status(db: sqlite_utils.Database, resource_id: str, status: str, note: str = "") -> None:
    """The sync records the hub's review outcome here."""
    if status not in SHARE_STATES:
        raise BadRequestError(f"未知状态 {status}", f"unknown share status {status}")
    with transaction(db):
        own_resource(db, resource_id)
        db.execute("update teacher_resources set share_status = ?, status_note = ?, updated_at = ? where resource_id = ?",
                   [status, note, time.time(), resource_id])
