"""Live lessons: the timetable and the classroom interaction (live_timetable, live_interaction)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, MetaData, Table, Text


def define(metadata: MetaData) -> None:
    """Add the live-lesson tables to ``metadata``."""
    Table(
        "live_timetable", metadata,
        Column("school_code", Text, primary_key=True),
        Column("lesson", Text, primary_key=True),
        Column("start", Text, nullable=False),
        Column("minutes", BigInteger, nullable=False),
        Column("subject", Text, nullable=False),
        Column("grade", Text, nullable=False),
        Column("teacher", Text, nullable=False),
        Column("title", Text, nullable=False),
        sqlite_with_rowid=False,
    )
    Table(
        "live_messages", metadata,
        Column("device_id", Text, primary_key=True),
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("school_code", Text, nullable=False),
        Column("lesson", Text, nullable=False),
        Column("kind", Text, nullable=False),
        Column("pupil", Text, nullable=False),
        Column("body", Text, nullable=False),
        Column("sent_at", Double, nullable=False),
        Column("received_at", Double, nullable=False),
        Index("live_messages_lesson", "lesson", "school_code", "kind"),
        sqlite_with_rowid=False,
    )
    Table(
        "live_polls", metadata,
        Column("poll_id", Text, primary_key=True),
        Column("lesson", Text, nullable=False),
        Column("question", Text, nullable=False),
        Column("options", Text, nullable=False),
        Column("started_at", Double, nullable=False),
        Column("closed_at", Double),
    )
    Table(
        "live_teachers", metadata,
        Column("lesson", Text, primary_key=True),
        Column("token_hash", Text, nullable=False),
        Column("created_at", Double, nullable=False),
    )
    Table(
        "live_held", metadata,
        Column("device_id", Text, primary_key=True),
        Column("held", BigInteger, nullable=False),
    )
