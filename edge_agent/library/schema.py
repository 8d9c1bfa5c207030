"""The appliance's own schema migrations (other packages keep theirs)."""

from __future__ import annotations

import sqlite_utils

from hub_sync.core.migrations import Migrations

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


@migrations
def m003_bigram_index(db: sqlite_utils.Database) -> None:
    # Chinese search terms are mostly two characters (拼音, 分数), too short for the
    # trigram index: a second FTS5 table holds each resource's character pairs
    # (rowid = resources.rowid), kept by Catalogue.upsert/delete.
    from edge_agent.library.catalogue import bigrams_of

    db.execute("create virtual table resources_bigrams using fts5(grams, tokenize = 'unicode61')")
    for row in db.execute("select rowid, title, description, chapter, keywords from resources").fetchall():
        db.execute("insert into resources_bigrams (rowid, grams) values (?, ?)", [row[0], bigrams_of(*row[1:])])


@migrations
def m004_catalogue_generation(db: sqlite_utils.Database) -> None:
    # A counter that moves whenever the catalogue changes (any process, any
    # connection), so caches of search answers know when they are stale.
    db.execute("create table catalogue_generation (id integer primary key check (id = 1), n integer not null)")
    db.execute("insert into catalogue_generation (id, n) values (1, 0)")
    for table in ("resources", "resource_files"):
        for event in ("insert", "update", "delete"):
            db.execute(f"create trigger {table}_{event}_generation after {event} on {table} "
                       f"begin update catalogue_generation set n = n + 1 where id = 1; end")


@migrations
def m005_answer_keys(db: sqlite_utils.Database) -> None:
    # Exercise files carry their answers: marked here (and by Catalogue.upsert at
    # every import and sync) so the content routes serve them to teachers only.
    from edge_agent.library.catalogue import ANSWER_KEY_SQL

    db.execute("alter table resource_files add column answer_key integer not null default 0")
    db.execute(f"update resource_files set answer_key = 1 where {ANSWER_KEY_SQL}")
