"""The PostgreSQL server around a hub's database: creating the database at ``hub init``,
finding and running the server's client programs (``pg_dump``, ``pg_restore``) for backups.

Passwords never go on a command line (``ps`` shows it to every user): the programs get
the URL without its password and the password in ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg import sql

from hub_sync.core.errors import DatabaseUnavailable, DataDirError
from hub_sync.hub.database import CONNECT_TIMEOUT_S, check_url

MAINTENANCE_DB = "postgres"
APPLICATION_NAME = "school-edge-hub"  # what database.Database's connections call themselves


def libpq_url(url: sa.URL | str, database: str | None = None) -> str:
    """``url`` as libpq reads it (``postgresql://user@host:port/db``), without its password."""
    parsed = check_url(str(url)) if isinstance(url, str) else url
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def libpq_env(url: sa.URL) -> dict[str, str]:
    """The environment for a PostgreSQL client program: the password, if the URL has one."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def connect(url: sa.URL, database: str | None = None) -> psycopg.Connection:
    """A plain psycopg connection (autocommit) to the server of ``url``; DatabaseUnavailable
    if the server does not answer or refuses the login."""
    try:
        return psycopg.connect(libpq_url(url, database), password=url.password, autocommit=True,
                               connect_timeout=CONNECT_TIMEOUT_S, application_name="school-edge-admin")
    except psycopg.OperationalError as exc:
        where = libpq_url(url, database)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"无法连接数据库服务器 {where}。请检查地址、用户和服务器是否在运行",
                                  f"cannot reach the database server {where} ({first})") from exc


def ensure_database(url_text: str) -> bool:
    """Make sure the database of a PostgreSQL URL exists; True if it was created here.

    A database that is missing on a server that answers is created through the server's
    ``postgres`` maintenance database (the user needs CREATEDB); a server that does not
    answer raises :class:`DatabaseUnavailable` before anything is written anywhere."""
    url = check_url(url_text)
    if url.get_backend_name() != "postgresql":
        return False
    name = url.database or ""
    if not name:
        raise DataDirError("数据库地址缺少库名，例如 postgresql://用户@主机:5432/county_hub",
                           "the URL names no database, e.g. postgresql://user@host:5432/county_hub")
    try:
        with connect(url, MAINTENANCE_DB) as conn:
            if conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
                return False
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            return True
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DataDirError(f"数据库 {name} 不存在，用户 {url.username} 也无权创建它。请让管理员先创建",
                           f"database {name} does not exist and user {url.username} may not create it: "
                           "ask the database administrator to create it first") from exc
    except DatabaseUnavailable as exc:
        raise DatabaseUnavailable(f"{exc.zh}；未创建任何内容", f"{exc.en}; nothing was created") from exc


def drop_created_database(url_text: str) -> None:
    """Drop the database ``ensure_database`` has just created, after the init that wanted it
    failed: a second ``hub init`` then starts from the same place as the first."""
    url = check_url(url_text)
    with connect(url, MAINTENANCE_DB) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(url.database or "")))


def other_sessions(url: sa.URL) -> int:
    """How many connections of running hubs (``hub serve``) the hub's database has now."""
    with connect(url) as conn:
        row = conn.execute("select count(*) from pg_stat_activity where datname = current_database()"
                           " and application_name = %s and pid <> pg_backend_pid()", [APPLICATION_NAME]).fetchone()
    return int(row[0])


def client_program(name: str) -> Path:
    """``pg_dump`` or ``pg_restore``: Debian's wrapper on the PATH, else the newest server's own."""
    found = shutil.which(name)
    if found:
        return Path(found)
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    raise DataDirError(f"找不到 {name}。请安装 PostgreSQL 客户端：apt-get install postgresql-client",
                       f"{name} not found; install the PostgreSQL client programs (apt-get install postgresql-client)")
