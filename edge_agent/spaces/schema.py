"""Tables of the learning spaces (one set of ``edge_agent.appliance.MIGRATIONS``).

People and classes carry ``synced`` (JSON: the field values last agreed with the
county, the base of a three-way merge, see ``merge.py``). Student acts (answers,
submissions, progress) are separate rows that merges never touch.
"""

from __future__ import annotations

import sqlite_utils

from hub_sync.core.migrations import Migrations

migrations = Migrations("spaces")


@migrations
def m001_people_and_classes(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        create table people (
            id integer primary key autoincrement,
            number text not null unique,          -- 学籍号, 教师编号, or a parent's phone
            name text not null,
            gender text not null default '',
            grade text not null default '',
            roles text not null,                  -- comma list: student,teacher,head_teacher,admin,technician,parent
            status text not null default 'active',-- active, transferred_out, graduated
            secret_kind text not null default '', -- password, pin, picture
            secret_hash text not null default '',
            must_change integer not null default 0,
            card_hash text,                       -- sha256 of the QR login card token
            synced text not null default '{}',
            created_at real not null,
            updated_at real not null
        );
        create unique index people_card on people(card_hash);
        create table classes (
            id integer primary key autoincrement,
            name text not null unique,
            grades text not null default '',      -- comma list; several for 复式班
            head_teacher_id integer references people(id),
            synced text not null default '{}',
            created_at real not null,
            updated_at real not null
        );
        create table class_members (
            class_id integer not null references classes(id),
            person_id integer not null references people(id),
            role text not null,                   -- student or teacher
            primary key (class_id, person_id)
        );
        create index class_members_person on class_members(person_id);
        create table parent_links (
            parent_id integer not null references people(id),
            child_id integer not null references people(id),
            primary key (parent_id, child_id)
        );
        create index parent_links_child on parent_links(child_id);
        """
    )


@migrations
def m002_sessions_and_lockout(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        create table sessions (
            token_hash text primary key,
            person_id integer not null references people(id),
            csrf text not null,
            client text not null default '',
            created_at real not null,
            last_seen real not null,
            idle_s real not null,
            expires_at real not null
        );
        create index sessions_person on sessions(person_id);
        create table login_failures (
            key text primary key,                 -- acct:<id> or client:<address>
            failures integer not null,
            first_at real not null,
            locked_until real not null default 0
        );
        """
    )


@migrations
def m003_teaching(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        create table assignments (
            id integer primary key autoincrement,
            class_id integer not null references classes(id),
            teacher_id integer not null references people(id),
            resource_id text not null,
            title text not null,
            kind text not null,                   -- resource, exercise, work
            due_at real,
            allow_late integer not null default 0,
            created_at real not null
        );
        create index assignments_class on assignments(class_id, created_at);
        create table assignment_targets (
            assignment_id integer not null references assignments(id),
            person_id integer not null references people(id),
            primary key (assignment_id, person_id)
        );
        create index assignment_targets_person on assignment_targets(person_id);
        create table answers (
            id integer primary key autoincrement,
            uid text not null unique,             -- stable across devices (merge by union)
            assignment_id integer not null references assignments(id),
            person_id integer not null references people(id),
            attempt integer not null,
            answers text not null,
            score real not null,
            total real not null,
            created_at real not null
        );
        create index answers_person on answers(person_id, assignment_id);
        create index answers_assignment on answers(assignment_id);
        create table progress (
            person_id integer not null references people(id),
            resource_id text not null,
            state text not null,                  -- not_started, in_progress, completed
            position real not null default 0,
            percent real not null default 0,
            updated_at real not null,
            primary key (person_id, resource_id)
        );
        create table submissions (
            id integer primary key autoincrement,
            uid text not null unique,
            assignment_id integer not null references assignments(id),
            person_id integer not null references people(id),
            text text not null default '',
            files text not null default '[]',     -- [{name, sha256, size, mime}]
            created_at real not null,
            score real,
            comment text not null default '',
            graded_by integer references people(id),
            graded_at real
        );
        create index submissions_person on submissions(person_id, assignment_id);
        create index submissions_assignment on submissions(assignment_id);
        """
    )


@migrations
def m004_messages_and_resources(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        create table messages (
            id integer primary key autoincrement,
            kind text not null,                   -- notice (hub), announcement (class), direct
            sender_id integer references people(id),
            class_id integer references classes(id),
            recipient_id integer references people(id),
            subject text not null default '',
            body text not null,
            created_at real not null
        );
        create index messages_class on messages(class_id);
        create index messages_recipient on messages(recipient_id);
        create table message_reads (
            message_id integer not null references messages(id),
            person_id integer not null references people(id),
            read_at real not null,
            primary key (person_id, message_id)
        );
        create table teacher_resources (
            resource_id text primary key,
            teacher_id integer not null references people(id),
            share_status text not null default 'private',  -- private, offered, pending, approved, rejected
            status_note text not null default '',
            updated_at real not null
        );
        create index teacher_resources_teacher on teacher_resources(teacher_id);
        create table favourites (
            person_id integer not null references people(id),
            resource_id text not null,
            note text not null default '',
            updated_at real not null,
            primary key (person_id, resource_id)
        );
        """
    )


@migrations
def m005_space_history(db: sqlite_utils.Database) -> None:
    # acts a transferred-in student did at another school (answers, submissions), append-only
    db.executescript(
        """
        create table space_history (
            uid text primary key,
            person_id integer not null references people(id),
            kind text not null,
            data text not null,
            created_at real not null
        );
        create index space_history_person on space_history(person_id);
        """
    )


@migrations
def m006_read_model_indexes(db: sqlite_utils.Database) -> None:
    # Covering indexes for the read models (summary.py, bench/spaces.py): a class summary
    # aggregates its assignments' answers and hand-ins from the index alone, in group
    # order (no temporary b-tree, no table lookups); a learner's last activity and recent
    # progress are a seek on (person_id, updated_at); completed resources a seek on
    # (person_id, state). The wider answers/submissions indexes start with assignment_id,
    # so they replace the narrow ones of m003 (one index less to keep up on each write).
    for sql in (
        "create index answers_assignment_cover on answers(assignment_id, person_id, score, total, created_at)",
        "drop index answers_assignment",
        "create index submissions_assignment_cover on submissions(assignment_id, person_id, score, created_at)",
        "drop index submissions_assignment",
        "create index progress_recent on progress(person_id, updated_at)",
        "create index progress_state on progress(person_id, state, resource_id)",
    ):
        db.execute(sql)


# What a class's read models (the progress summary) are computed from: table, the
# classes a row belongs to (written for NEW/OLD), and the events that change them.
_CLASS_OF = {
    "classes": ("select {row}.id as class_id", "insert, update, delete"),
    "class_members": ("select {row}.class_id as class_id", "insert, update, delete"),
    "assignments": ("select {row}.class_id as class_id", "insert, update, delete"),
    "assignment_targets": ("select class_id from assignments where id = {row}.assignment_id", "insert, update, delete"),
    "answers": ("select class_id from assignments where id = {row}.assignment_id", "insert, update, delete"),
    "submissions": ("select class_id from assignments where id = {row}.assignment_id", "insert, update, delete"),
    "progress": ("select class_id from class_members where person_id = {row}.person_id", "insert, update, delete"),
    "people": ("select class_id from class_members where person_id = {row}.id", "update, delete"),
}


@migrations
def m007_class_versions(db: sqlite_utils.Database) -> None:
    # A class's version changes, in the same transaction, with every write to what its
    # summary is computed from (triggers, so every writer is covered: API, merges, roster
    # imports, another process). Read models cached by (class, version) are then never
    # stale. Versions are random 64-bit values, not counters, so a cache can never take
    # one database's version for another's.
    db.execute("create table class_versions (class_id integer primary key, version integer not null)")
    db.execute("insert into class_versions (class_id, version) select id, random() from classes")
    for table, (select, events) in _CLASS_OF.items():
        for event in (e.strip() for e in events.split(",")):
            rows = {"insert": ("new",), "update": ("old", "new"), "delete": ("old",)}[event]
            bumps = "".join(f"insert into class_versions (class_id, version) select class_id, random() from"
                            f" ({select.format(row=row)}) where true"
                            " on conflict (class_id) do update set version = excluded.version;\n" for row in rows)
            db.execute(f"create trigger class_version_{table}_{event} after {event} on {table} begin\n{bumps}end")


@migrations
def m008_login_throttle(db: sqlite_utils.Database) -> None:
    # See throttle.py: how many locks in a row (each lasts longer), when the last one
    # began, and how many wrong secrets were ever checked against the key.
    for column in ("lock_level integer not null default 0", "locked_at real not null default 0",
                   "wrong_total integer not null default 0"):
        db.execute(f"alter table login_failures add column {column}")
