"""``school-edge hub init --db``: a hub on PostgreSQL (its database created if missing),
SQLite without it, and nothing written when the URL is wrong or the server does not answer."""

from __future__ import annotations

import stat

from click.testing import CliRunner

from edge_agent.cli import main
from hub_sync.core.processes import free_port


def cli(*args: str):
    return CliRunner().invoke(main, ["hub", *args])


def test_init_without_db_keeps_the_hub_in_sqlite(tmp_path):
    data = tmp_path / "hub"
    result = cli("init", "--data", str(data))
    assert result.exit_code == 0, result.output
    assert (data / "hub.db").is_file() and not (data / "database.url").exists()
    status = cli("status", "--data", str(data))
    assert f"database             sqlite sqlite:///{data / 'hub.db'}" in status.output


def test_init_creates_a_missing_postgresql_database_and_keeps_the_password_out_of_sight(tmp_path, postgres):
    data = tmp_path / "hub"
    url = f"postgresql://postgres:s3cret@127.0.0.1:{postgres.port}/county_init_{free_port()}"
    try:
        result = cli("init", "--data", str(data), "--db", url)
        assert result.exit_code == 0, result.output
        assert "已创建数据库 Created database" in result.output and "s3cret" not in result.output
        saved = data / "database.url"
        assert saved.read_text().strip() == url and stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert not (data / "hub.db").exists()
        status = cli("status", "--data", str(data))
        assert status.exit_code == 0, status.output
        assert "database             postgresql" in status.output and "s3cret" not in status.output
        assert url.rsplit("/", 1)[1] in status.output
    finally:
        postgres.drop_database(url)


def test_init_into_an_existing_postgresql_database_does_not_create_it(tmp_path, postgres):
    url = postgres.create_database()
    try:
        result = cli("init", "--data", str(tmp_path / "hub"), "--db", url)
        assert result.exit_code == 0, result.output
        assert "Created database" not in result.output
    finally:
        postgres.drop_database(url)


def _refused_without_writing(tmp_path, url: str, words: str) -> None:
    data = tmp_path / "hub"
    result = cli("init", "--data", str(data), "--db", url)
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("错误 Error:") and "\n" not in line and words in line
    assert not data.exists() or not any(data.iterdir())  # no keys, no database.url


def test_init_with_an_unreachable_server_writes_nothing(tmp_path):
    _refused_without_writing(tmp_path, f"postgresql://postgres@127.0.0.1:{free_port()}/county", "cannot reach the database server")


def test_init_with_another_engine_writes_nothing(tmp_path):
    _refused_without_writing(tmp_path, "mysql://root@127.0.0.1/county", "unsupported database")


def test_init_that_fails_after_creating_the_database_drops_it(tmp_path, postgres):
    """The folder cannot be made (a file is in its place): one line, and the database the init
    created is gone again, so the same command works once the folder is fixed."""
    data = tmp_path / "hub"
    data.write_text("not a folder")
    name = f"county_failed_{free_port()}"
    url = f"postgresql://postgres@127.0.0.1:{postgres.port}/{name}"
    result = cli("init", "--data", str(data), "--db", url)
    assert result.exit_code == 1 and result.output.startswith("错误 Error:") and result.output.count("\n") == 1, result.output
    with postgres.admin() as conn:
        assert conn.execute("select count(*) from pg_database where datname = %s", [name]).fetchone()[0] == 0
    assert data.read_text() == "not a folder"
    data.unlink()
    try:
        again = cli("init", "--data", str(data), "--db", url)
        assert again.exit_code == 0 and "已创建数据库 Created database" in again.output, again.output
    finally:
        postgres.drop_database(url)
