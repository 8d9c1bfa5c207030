"""The appliance's own schema migrations (other packages keep theirs)."""

from __future__ import annotations

import sqlite_utils

from hub_sync.migrations import Migrations

migrations = Migrations("edge_agent")


@migrations
def m001_catalogue(db: sqlite_utils.Database) -> None:
    db["resources"].create(
        {
            "id": str, "title": str, "description": str, "keywords": str, "kind": str,
            "stage": str, "grade": str, "subject": str, "edition": str, "chapter": str,
            "duration_s": int, "pages": int, "size": int, "source": str, "licence": str,
            "channel": str, "created_at": float, "updated_at": float,
        },
        pk="id",
        not_null={"title", "kind"},
        defaults={"description": "", "keywords": "", "stage": "", "grade": "", "subject": "",
                  "edition": "", "chapter": "", "source": "county", "licence": "", "channel": "", "size": 0},
    )
    for cols in (["subject", "grade"], ["stage"], ["edition"], ["kind"], ["channel"], ["updated_at"]):
        db["resources"].create_index(cols)
    db["resource_files"].create(
        {"resource_id": str, "path": str, "sha256": str, "size": int, "mime": str},
        pk=("resource_id", "path"),
        foreign_keys=[("resource_id", "resources", "id")],
    )
    db["resource_files"].create_index(["sha256"])
    db["resources"].enable_fts(["title", "description", "chapter", "keywords"], tokenize="trigram", create_triggers=True)


@migrations
def m002_identity_and_checks(db: sqlite_utils.Database) -> None:
    # key/value facts about this device: device_id, school_code, school_name ...
    db["device_identity"].create({"key": str, "value": str}, pk="key")
    # last integrity check of each blob, keyed by its on-disk identity
    db["blob_checks"].create({"sha256": str, "size": int, "mtime_ns": int, "ok": int, "checked_at": float}, pk="sha256")
