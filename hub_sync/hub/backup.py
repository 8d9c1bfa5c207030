"""Backing up and restoring a hub's database, on either engine (``school-edge hub backup/restore``).

A backup is one file::

    SCHOOL-EDGE-HUB-BACKUP 1\\n      magic line
    {"engine": ..., ...}  (padded)    header: HEADER_BYTES of JSON, padded with spaces
    payload                           SQLite: the database file; PostgreSQL: pg_dump --format=custom

The header names the engine, the schema's Alembic revision, the time, the hub (sha256 of
its root public key) and the payload's size and sha256, so ``restore`` refuses a backup of
another hub, of another engine, of a newer schema than this software knows, or a file cut
short or damaged, before it changes anything.

SQLite is copied with SQLite's online backup API while ``hub serve`` may keep writing: the
copy holds one read snapshot from its first page to its last, so it is consistent (WAL lets
the writers go on). PostgreSQL is dumped by ``pg_dump`` (itself one snapshot) and restored
by ``pg_restore`` into ``psql --single-transaction`` after dropping the hub's objects in
the same transaction: all or nothing (``pg_restore --clean`` cannot drop the partitions of
``usage_events``).
Restoring needs ``hub serve`` stopped: on PostgreSQL a restore refuses while a hub is
connected, on SQLite while another process has ``hub.db`` open.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import sqlalchemy as sa

from hub_sync.core.const import SQLITE_BUSY_TIMEOUT_MS
from hub_sync.core.errors import DataDirError, FormatError
from hub_sync.core.keys import load_signer
from hub_sync.hub import postgres_admin
from hub_sync.hub.database import Database, check_url, url_of

MAGIC = b"SCHOOL-EDGE-HUB-BACKUP 1\n"
HEADER_BYTES = 4096
COPY_CHUNK = 1024 * 1024
SQLITE_STEP_PAGES = 1024  # 4 MiB per step of the online backup: progress, and writers get a turn
Progress = Callable[[int, int], None]  # (done, total) in the operation's own units


def _nothing(done: int, total: int) -> None:
    pass


def hub_id(data_dir: str | Path) -> str:
    """The hub's identity: sha256 of its root public key (raw Ed25519 bytes), hex."""
    key = load_signer(Path(data_dir) / "keys" / "root.pem").public_key
    return hashlib.sha256(bytes.fromhex(key.keyval["public"])).hexdigest()


def known_revisions() -> set[str]:
    """The Alembic revisions this software ships."""
    from hub_sync.hub.schema_migrations import ALEMBIC_DIR  # first: it quiets Alembic's import-time log lines

    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory(str(ALEMBIC_DIR)).walk_revisions()}


# -- backup ------------------------------------------------------------------------------
def backup(data_dir: str | Path, out: str | Path, progress: Progress = _nothing) -> dict:
    """Write a backup of the hub in ``data_dir`` to ``out`` (temp file, then renamed); returns its header."""
    data_dir, out = Path(data_dir), Path(out)
    url = check_url(url_of(data_dir))
    engine = url.get_backend_name()
    header = {"engine": engine, "hub_id": hub_id(data_dir), "created_at": time.time()}
    with _temp_next_to(out) as tmp, _temp_next_to(out, ".payload") as payload:
        if engine == "sqlite":
            header["revision"] = _sqlite_snapshot(Path(url.database), payload, progress)
        else:
            header["revision"] = _revision(url)
            _pg_dump(url, payload, progress)
        _assemble(tmp, header, payload)
        os.replace(tmp, out)
    return header


def _sqlite_snapshot(db_path: Path, target: Path, progress: Progress) -> str | None:
    """Copy the database by the online backup API under one read snapshot; its revision."""
    if not db_path.is_file():
        raise DataDirError(f"找不到数据库 {db_path}", f"no database at {db_path}")
    src = sqlite3.connect(db_path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        src.execute("begin")  # a read transaction held across the steps: the copy is one snapshot
        src.execute("select count(*) from sqlite_master").fetchone()
        src.backup(dst, pages=SQLITE_STEP_PAGES, progress=lambda _s, remaining, total: progress(total - remaining, total))
        src.execute("commit")
        dst.execute("pragma journal_mode = delete")  # the payload is one self-contained file
        return _sqlite_revision(dst)
    finally:
        src.close()
        dst.close()


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("select version_num from alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None  # a hub.db from before Alembic: the next open adopts it
    return row[0] if row else None


def _revision(url: sa.URL) -> str | None:
    db = Database(url.render_as_string(hide_password=False))
    try:
        if "alembic_version" not in db.table_names():
            return None
        return db.scalar("select version_num from alembic_version")
    finally:
        db.close()


def _pg_dump(url: sa.URL, target: Path, progress: Progress) -> None:
    with postgres_admin.connect(url) as conn:
        tables = conn.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone()[0]
    args = [str(postgres_admin.client_program("pg_dump")), "--format=custom", "--verbose", "--no-owner",
            f"--file={target}", f"--dbname={postgres_admin.libpq_url(url)}"]
    _run_counting(args, url, "dumping contents of table", tables, progress, "pg_dump")


def _assemble(tmp: Path, header: dict, payload: Path) -> None:
    """Magic, header (with the payload's size and hash), payload; fsynced."""
    digest, size = hashlib.sha256(), 0
    with open(payload, "rb") as f:
        for chunk in iter(lambda: f.read(COPY_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    header = {**header, "payload_bytes": size, "payload_sha256": digest.hexdigest()}
    encoded = json.dumps(header, sort_keys=True).encode()
    if len(encoded) > HEADER_BYTES:
        raise ValueError("backup header too long")
    with open(tmp, "wb") as out, open(payload, "rb") as f:
        out.write(MAGIC + encoded.ljust(HEADER_BYTES, b" "))
        for chunk in iter(lambda: f.read(COPY_CHUNK), b""):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


# -- reading a backup -----------------------------------------------------------------------
def read_header(path: str | Path) -> dict:
    """The header of a backup file, after checking the whole payload against it."""
    path = Path(path)
    bad = (f"{path} 不是完整的县级平台备份（文件损坏或不完整），未做任何更改",
           f"{path} is not a complete hub backup (damaged or cut short); nothing was changed")
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + HEADER_BYTES)
            if len(head) < len(MAGIC) + HEADER_BYTES or not head.startswith(MAGIC):
                raise FormatError(*bad)
            header = json.loads(head[len(MAGIC):].decode())
            digest, size = hashlib.sha256(), 0
            for chunk in iter(lambda: f.read(COPY_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise DataDirError(f"无法读取备份文件 {path}：{exc.strerror}", f"cannot read backup {path}: {exc.strerror}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(*bad) from exc
    if not isinstance(header, dict) or size != header.get("payload_bytes") or digest.hexdigest() != header.get("payload_sha256"):
        raise FormatError(*bad)
    return header


@contextlib.contextmanager
def _payload(path: Path) -> Iterator[Path]:
    """The payload of a (checked) backup file, extracted to a temp file next to it."""
    with _temp_next_to(path, ".payload") as target:
        with open(path, "rb") as f, open(target, "wb") as out:
            f.seek(len(MAGIC) + HEADER_BYTES)
            for chunk in iter(lambda: f.read(COPY_CHUNK), b""):
                out.write(chunk)
        yield target


# -- restore -----------------------------------------------------------------------------
def check_restorable(data_dir: str | Path, source: str | Path) -> dict:
    """The header of ``source`` if it can replace the hub's data; else the refusal, nothing changed."""
    data_dir = Path(data_dir)
    header = read_header(source)
    engine = check_url(url_of(data_dir)).get_backend_name()
    if header.get("hub_id") != hub_id(data_dir):
        raise DataDirError("这份备份来自另一个县级平台（根密钥不同），未做任何更改",
                           "this backup belongs to another hub (a different root key); nothing was changed")
    if header.get("engine") != engine:
        raise DataDirError(f"这份备份来自 {header.get('engine')} 数据库，本平台用 {engine}；不支持跨数据库恢复，未做任何更改",
                           f"this is a {header.get('engine')} backup and this hub runs on {engine}; "
                           "restoring across engines is not supported; nothing was changed")
    revision = header.get("revision")
    if revision is not None and revision not in known_revisions():
        raise DataDirError(f"这份备份的数据库版本 {revision} 比本软件新，请先升级软件；未做任何更改",
                           f"this backup's schema revision {revision} is newer than this software knows; "
                           "upgrade the software first; nothing was changed")
    return header


def restore(data_dir: str | Path, source: str | Path, progress: Progress = _nothing) -> dict:
    """Replace the hub's database with the backup ``source`` (``hub serve`` stopped); returns its header."""
    data_dir, source = Path(data_dir), Path(source)
    header = check_restorable(data_dir, source)
    url = check_url(url_of(data_dir))
    if header["engine"] == "sqlite":
        _refuse_if_open(Path(url.database))
        with _payload(source) as payload:
            _sqlite_restore(payload, Path(url.database), progress)
    else:
        if postgres_admin.other_sessions(url):
            raise DataDirError("县级平台服务（hub serve）还连着数据库：请先停止它再恢复，未做任何更改",
                               "a hub server (hub serve) is connected to the database: stop it before restoring; nothing was changed")
        with _payload(source) as payload:
            _pg_restore(url, payload, progress)
    return header


def _sqlite_restore(payload: Path, db_path: Path, progress: Progress) -> None:
    """Copy the backup into hub.db with the backup API: one write transaction, all or nothing."""
    src = sqlite3.connect(payload, isolation_level=None)
    try:
        if src.execute("pragma quick_check").fetchone()[0] != "ok":
            raise FormatError("备份中的数据库已损坏，未做任何更改", "the database in the backup is damaged; nothing was changed")
        dst = sqlite3.connect(db_path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            src.backup(dst, pages=SQLITE_STEP_PAGES, progress=lambda _s, remaining, total: progress(total - remaining, total))
            dst.execute("pragma journal_mode = wal")
            dst.execute("pragma wal_checkpoint(truncate)")
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        raise FormatError(f"备份中的数据库无法读取（{exc}），未做任何更改",
                          f"the database in the backup cannot be read ({exc}); nothing was changed") from exc
    finally:
        src.close()


# Everything of the hub's in schema public, dropped at the start of the restore's transaction
# (pg_restore --clean cannot drop a partitioned table's partitions: "cannot drop inherited constraint").
_PG_CLEAN = """
set local client_min_messages = warning;
do $clean$ declare r record; begin
  for r in select c.oid::regclass as name, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S') and not c.relispartition
           and not exists (select 1 from pg_depend d where d.objid = c.oid and d.refobjid <> c.oid
                                       and d.deptype in ('e', 'a', 'i'))
  loop
    execute format(case r.relkind when 'v' then 'drop view if exists %s cascade'
                                  when 'm' then 'drop materialized view if exists %s cascade'
                                  when 'S' then 'drop sequence if exists %s cascade'
                                  else 'drop table if exists %s cascade' end, r.name);
  end loop;
  for r in select p.oid::regprocedure as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname = 'public' and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
  loop
    execute format('drop routine if exists %s cascade', r.name);
  end loop;
end $clean$;
"""


def _pg_restore(url: sa.URL, payload: Path, progress: Progress) -> None:
    """The dump as SQL (``pg_restore --file=-``) into ``psql --single-transaction``, after the clean:
    all or nothing."""
    program = str(postgres_admin.client_program("pg_restore"))
    env = postgres_admin.libpq_env(url)
    listing = subprocess.run([program, "--list", str(payload)], capture_output=True, text=True, env=env)
    if listing.returncode != 0:
        raise FormatError("备份中的数据库转储无法读取，未做任何更改", "the dump in the backup cannot be read; nothing was changed")
    entries = sum(1 for line in listing.stdout.splitlines() if line and not line.startswith(";"))
    with _temp_next_to(payload, ".sql") as clean:
        clean.write_text(_PG_CLEAN, encoding="utf-8")
        producer = subprocess.Popen([program, "--no-owner", "--verbose", "--file=-", str(payload)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        consumer = subprocess.Popen([str(postgres_admin.client_program("psql")), "--no-psqlrc", "--quiet",
                                     "--single-transaction", "--set=ON_ERROR_STOP=1", f"--dbname={postgres_admin.libpq_url(url)}",
                                     f"--file={clean}", "--file=-"],
                                    stdin=producer.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, env=env)
        assert producer.stdout is not None and producer.stderr is not None
        producer.stdout.close()  # psql's now: pg_restore sees a broken pipe if psql stops
        done, tail = 0, []
        for line in producer.stderr:
            tail = (tail + [line.rstrip()])[-20:]
            if line.startswith("pg_restore: ") and "error" not in line:
                done += 1
                progress(min(done, entries), entries)
        producer.stderr.close()
        producer.wait()
        _, psql_err = consumer.communicate()
    if consumer.returncode != 0 or producer.returncode != 0:
        lines = [t for t in (psql_err or "").splitlines() + tail if re.search(r"error|fatal|could not", t, re.I)]
        detail = lines[0] if lines else f"exit {consumer.returncode}/{producer.returncode}"
        raise DataDirError(f"恢复失败，未做任何更改：{detail}", f"restore failed; nothing was changed: {detail}")
    progress(entries, entries)


def _run_counting(args: list[str], url: sa.URL, marker: str, total: int, progress: Progress, what: str) -> None:
    """Run a PostgreSQL client program, counting its verbose lines containing ``marker`` as progress."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=postgres_admin.libpq_env(url))
    done, tail = 0, []
    assert proc.stderr is not None
    for line in proc.stderr:
        tail = (tail + [line.rstrip()])[-20:]
        if marker in line:
            done += 1
            progress(min(done, total), total)
    proc.stderr.close()
    if proc.wait() != 0:
        errors = [t for t in tail if re.search(r"error|fatal|could not", t, re.I)] or tail[-1:]
        detail = errors[-1] if errors else f"exit {proc.returncode}"
        raise DataDirError(f"{what} 失败，未做任何更改：{detail}", f"{what} failed; nothing was changed: {detail}")
    progress(total, total)


def _refuse_if_open(db_path: Path) -> None:
    """Refuse while another process (a running ``hub serve``) has hub.db open (Linux's /proc)."""
    target = {str(db_path.resolve()), *(f"{db_path.resolve()}{s}" for s in ("-wal", "-shm"))}
    me = os.getpid()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        if int(fd_dir.parent.name) == me:
            continue
        try:
            links = {os.readlink(p) for p in fd_dir.iterdir()}
        except OSError:
            continue  # gone, or another user's
        if links & target:
            raise DataDirError(f"另一个进程（{fd_dir.parent.name}，多半是 hub serve）正在使用 {db_path}：请先停止它再恢复，未做任何更改",
                               f"another process ({fd_dir.parent.name}, probably hub serve) has {db_path} open: "
                               "stop it before restoring; nothing was changed")


@contextlib.contextmanager
def _temp_next_to(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp file name beside ``path`` (same filesystem: the rename is atomic), removed afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
