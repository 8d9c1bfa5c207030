"""Column types both engines share (see the package docstring)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer

# An integer id primary key: on SQLite it must stay an ``INTEGER PRIMARY KEY`` (an alias of the
# rowid, so ``autoincrement`` means SQLite's AUTOINCREMENT); on PostgreSQL a bigint (bigserial).
Id = BigInteger().with_variant(Integer, "sqlite")
