"""Tables of the learning spaces (appended to ``edge_agent.appliance.EXTRA_MIGRATIONS``).

People and classes carry ``synced`` (JSON: the field values last agreed with the
county, the base of a three-way merge, see ``merge.py``). Student acts (answers,
submissions, progress) are separate rows that merges never touch.
"""

from __future__ import annotations

import sqlite_utils

from hub_sync.migrations import Migrations

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
