"""The hub's database: one SQLAlchemy Core engine over SQLite or PostgreSQL.

A county hub keeps its tables in ``H/hub.db`` (SQLite in WAL, the embedded default);
a province or a large county runs the same hub on PostgreSQL, named by the URL in
``H/database.url`` (written by ``school-edge hub init --db postgresql://...``), with
several ``hub serve`` processes against one database.

The storage modules write every statement once, in SQL both engines accept, and run
it through :class:`Database`:

* ``db.execute(sql, params)``: ``:name`` placeholders with a dict, or ``?`` with a
  list (kept so the statements read like the rest of the project's SQLite code);
  outside a transaction a statement is a transaction of its own.
* ``with db.transaction():`` one connection and one transaction for the block, joined
  by nested calls in the same thread. On SQLite a writing transaction starts with
  ``BEGIN IMMEDIATE`` so two writers queue instead of failing half-way; on PostgreSQL
  (read committed) the storage modules lock the rows they decide on
  (``select ... for update``) or take ``db.lock(name)``.

A database that cannot be reached (PostgreSQL down or restarting, a wrong password)
raises :class:`~hub_sync.core.errors.DatabaseUnavailable`; the HTTP APIs answer 503
with Retry-After and a device keeps its upload until one is acknowledged.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from hub_sync.core.const import SQLITE_BUSY_TIMEOUT_MS
from hub_sync.core.errors import DatabaseUnavailable, DataDirError
from hub_sync.core.file_modes import private_dir, private_file

SQLITE_FILE = "hub.db"
URL_FILE = "database.url"
SQLITE_CACHE_KIB = 16 * 1024  # a county's usage tables outgrow SQLite's 2 MiB default (ingest ~25 % slower)
SIDE_FILES = ("", "-wal", "-shm", "-journal")
# connections per process: gunicorn's threads plus the scheduler's jobs
POOL_SIZE = 8
POOL_OVERFLOW = 8
POOL_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 5
SqliteFunctions = Mapping[str, tuple[int, Callable[..., Any]]]


def url_of(data_dir: str | Path) -> str:
    """The database URL of a hub data folder: ``H/database.url`` if present, else ``H/hub.db``."""
    data_dir = Path(data_dir)
    named = data_dir / URL_FILE
    if named.is_file():
        return named.read_text(encoding="utf-8").strip()
    return f"sqlite:///{data_dir / SQLITE_FILE}"


def remember_url(data_dir: str | Path, url: str) -> None:
    """Write ``H/database.url`` (0600: it may hold a password) for a hub on another engine."""
    check_url(url)
    path = Path(data_dir) / URL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(url + "\n", encoding="utf-8")
    private_file(tmp)
    tmp.replace(path)


def check_url(url: str) -> sa.URL:
    """Parse a database URL, accepting SQLite files and PostgreSQL only."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DataDirError(f"数据库地址无效：{url}", f"not a database URL: {url} ({exc})") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and parsed.database:
        return parsed
    raise DataDirError(f"不支持的数据库：{parsed.render_as_string(hide_password=True)}。请用 postgresql://用户@主机:端口/库名",
                       f"unsupported database {parsed.render_as_string(hide_password=True)}; "
                       "give postgresql://user@host:port/dbname (or nothing for SQLite)")


class Rows:
    """A statement's rows, fetched: usable after its connection went back to the pool."""

    def __init__(self, rows: list[sa.Row], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> sa.Row | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[sa.Row]:
        rest, self._next = self._rows[self._next:], len(self._rows)
        return rest

    def first(self) -> sa.Row | None:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self._rows[0][0] if self._rows else None

    def __iter__(self) -> Iterator[sa.Row]:
        return iter(self.fetchall())


class Database:
    """The hub database: an engine, and the connection of this thread's transaction."""

    def __init__(self, url: str, sqlite_functions: SqliteFunctions | None = None) -> None:
        self.url = check_url(url)
        self.dialect = self.url.get_backend_name()
        self._local = threading.local()
        self._sqlite_functions = dict(sqlite_functions or {})
        self.engine = self._make_engine()
        # a hub a command opened and never closed still hands its pooled connections back to the
        # server (PostgreSQL) when it is collected, instead of leaving them to the driver's __del__
        weakref.finalize(self, self.engine.dispose)

    # -- engine ------------------------------------------------------------------------
    def _make_engine(self) -> Engine:
        if self.dialect == "sqlite":
            path = Path(self.url.database)
            private_dir(path.parent)
            for suffix in SIDE_FILES:
                private_file(f"{path}{suffix}")
            engine = sa.create_engine(self.url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=POOL_TIMEOUT_S,
                                      connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", self._sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        return sa.create_engine(self.url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=POOL_TIMEOUT_S,
                                pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S,
                                                                  "application_name": "school-edge-hub"})

    def _sqlite_connect(self, dbapi_conn, _record) -> None:
        # SQLAlchemy's pysqlite recipe: the driver's own BEGIN handling off, ours in _sqlite_begin
        dbapi_conn.isolation_level = None
        for pragma in (f"busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}", "journal_mode = wal", "synchronous = full",
                       "foreign_keys = on", f"cache_size = -{SQLITE_CACHE_KIB}"):
            dbapi_conn.execute(f"pragma {pragma}")
        for name, (arity, fn) in self._sqlite_functions.items():
            dbapi_conn.create_function(name, arity, fn, deterministic=True)
        for suffix in SIDE_FILES:  # made by the pragmas when the database is new
            private_file(f"{self.url.database}{suffix}")

    def describe(self) -> str:
        """The URL without its password (nor SQLAlchemy's driver name), for people."""
        return self.url.set(drivername=self.dialect).render_as_string(hide_password=True)

    def close(self) -> None:
        """Close every pooled connection (before a fork, at exit); the engine stays usable."""
        self.engine.dispose()

    # -- transactions ------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    @contextlib.contextmanager
    def transaction(self, immediate: bool = True) -> Iterator["Database"]:
        """One transaction for the block: committed on success, rolled back on any error.

        Nested calls in the same thread join the outer transaction. ``immediate`` (SQLite)
        takes the write lock at the start; pass False for a read-only snapshot."""
        if self.in_transaction:
            yield self
            return
        with self._connection() as conn:
            conn.info["immediate"] = immediate
            self._local.conn = conn
            try:
                with _unavailable(self), conn.begin():
                    yield self
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        with _unavailable(self):
            conn = self.engine.connect()
        try:
            yield conn
        finally:
            conn.close()

    @property
    def for_update(self) -> str:
        """`` for update`` on PostgreSQL (lock the rows a transaction decides on), nothing on
        SQLite (its immediate transaction holds the whole database already); append to a select."""
        return " for update" if self.dialect == "postgresql" else ""

    def lock(self, name: str) -> None:
        """Hold the lock ``name`` until this transaction ends (PostgreSQL's advisory lock;
        SQLite's immediate transactions are one writer at a time already)."""
        if not self.in_transaction:
            raise RuntimeError("Database.lock needs a transaction")
        if self.dialect == "postgresql":
            self._local.conn.execute(sa.text("select pg_advisory_xact_lock(:k)"), {"k": advisory_key(name)})

    def connection(self) -> Connection:
        """This thread's transaction's SQLAlchemy connection (for COPY and Core constructs)."""
        if not self.in_transaction:
            raise RuntimeError("Database.connection needs a transaction")
        return self._local.conn

    # -- statements --------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Rows:
        """Run one statement; ``?`` placeholders take a list, ``:name`` ones a dict."""
        stmt, binds = _statement(sql, params)
        if self.in_transaction:
            with _unavailable(self):
                return _fetched(self._local.conn.execute(stmt, binds))
        with self.transaction(immediate=not _reads(sql)):
            with _unavailable(self):
                return _fetched(self._local.conn.execute(stmt, binds))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> int:
        """Run one statement for each of ``rows``; return the rows changed."""
        batch = list(rows)
        if not batch:
            return 0
        stmt = sa.text(_named(sql)) if not isinstance(batch[0], Mapping) else sa.text(sql)
        binds = [r if isinstance(r, Mapping) else _positional(r) for r in batch]
        with self.transaction():
            with _unavailable(self):
                return self._local.conn.execute(stmt, binds).rowcount

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> list[dict]:
        """The rows of a query as dicts."""
        return [dict(r._mapping) for r in self.execute(sql, params)]

    def iterate(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None,
                batch: int = 1000) -> Iterator[sa.Row]:
        """Stream a big query's rows (a server-side cursor on PostgreSQL), ``batch`` at a time."""
        stmt, binds = _statement(sql, params)
        with self.transaction(immediate=False):
            conn = self._local.conn
            with _unavailable(self):
                result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt, binds)
                yield from result

    def scalar(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row of a query, or None."""
        return self.execute(sql, params).scalar()

    def aggregate_strings(self, column: str, separator: str) -> str:
        """SQL joining ``column``'s strings of a group with ``separator`` (SQLite's group_concat,
        PostgreSQL's string_agg), as SQLAlchemy writes it for this engine."""
        expr = sa.func.aggregate_strings(sa.literal_column(column), separator)
        return str(expr.compile(dialect=self.engine.dialect, compile_kwargs={"literal_binds": True}))

    def table_names(self) -> list[str]:
        """The tables of the database (for checks and tests)."""
        with self._connection() as conn:
            return sa.inspect(conn).get_table_names()


def advisory_key(name: str) -> int:
    """The 64-bit key of PostgreSQL's advisory lock called ``name``."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def transaction(db: Database, immediate: bool = True):
    """``db.transaction(immediate)``: one transaction for a block (see :meth:`Database.transaction`)."""
    return db.transaction(immediate)


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("begin immediate" if conn.info.get("immediate", True) else "begin")


def _reads(sql: str) -> bool:
    return sql.lstrip()[:6].lower() in ("select", "pragma")


@contextlib.contextmanager
def _unavailable(db: Database) -> Iterator[None]:
    """Turn "cannot reach the database" into one clear, expected error."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        if isinstance(exc, sa.exc.OperationalError) and db.dialect == "sqlite" and "locked" not in str(exc.orig):
            raise  # a SQLite mistake (no such table ...) is a bug, not an outage
        raise _outage(db, exc.orig) from exc


@contextlib.contextmanager
def driver_errors(db: Database) -> Iterator[None]:
    """Statements sent on the driver's own connection (COPY, executemany without SQLAlchemy's
    per-row work): a server gone away is ``DatabaseUnavailable``, as through the facade."""
    if db.dialect != "postgresql":
        yield
        return
    import psycopg  # only a hub on PostgreSQL loads its driver

    try:
        yield
    except psycopg.OperationalError as exc:
        db.connection().invalidate(exc)  # useless now; the pool must not hand it out again
        raise _outage(db, exc) from exc


def _outage(db: Database, cause: BaseException) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"县级平台的数据库暂时无法使用（{db.describe()}）。请检查数据库服务是否在运行，稍后重试；设备会保留未确认的数据。",
        f"the hub database {db.describe()} cannot be used right now ({str(cause).strip().splitlines()[0]}); "
        "check that the database server runs and try again; devices keep what was not acknowledged")


def _statement(sql: str, params) -> tuple[sa.TextClause, dict]:
    if params is None:
        return _text(sql), {}
    if isinstance(params, Mapping):
        return _text(sql), dict(params)
    return _text(_named(sql)), _positional(params)


@lru_cache(maxsize=2048)
def _text(sql: str) -> sa.TextClause:
    return sa.text(sql)


_QMARK = re.compile(r"'(?:[^']|'')*'|\?")


@lru_cache(maxsize=2048)
def _named(sql: str) -> str:
    """``?`` placeholders (outside string literals) as ``:p0, :p1 ...`` for SQLAlchemy's text()."""
    counter = iter(range(10_000))
    return _QMARK.sub(lambda m: m.group(0) if m.group(0) != "?" else f":p{next(counter)}", sql)


def _positional(params: Sequence[Any]) -> dict:
    return {f"p{i}": v for i, v in enumerate(params)}


def _fetched(result: sa.CursorResult) -> Rows:
    rows = result.fetchall() if result.returns_rows else []
    return Rows(rows, result.rowcount)
