"""Bad input at the command line: one clear line, exit 1, no traceback, nothing
already stored changed. Full and read-only disks are real tmpfs mounts."""

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.common import REPO
from fixtures.servers import free_port, tmpfs

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.library.importer import import_files
from hub_sync.core.blobstore import INCOMING
from hub_sync.core.errors import DiskFullError

MIB = 1024 * 1024
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_agent.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single line an operator sees; fails on a traceback or extra noise."""
    assert result.returncode == 1, result.stdout + result.stderr
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("错误 Error: ")
    return lines[0]


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def snapshot(data: Path) -> tuple:
    """What is stored: blobs with their bytes, catalogue rows, leftovers in .incoming."""
    leftovers = sorted(p.name for p in (data / "content" / INCOMING).iterdir())  # before open() cleans them
    app = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 0, "advertise": False}))
    try:
        blobs = {sha: app.store.path_for(sha).read_bytes() for sha in app.store}
        rows = app.db.execute("select id, title, size from resources order by id").fetchall()
        files = app.db.execute("select resource_id, path, sha256 from resource_files order by 1, 2").fetchall()
        return blobs, rows, files, leftovers
    finally:
        app.close()


def seeded(data: Path, reserve_mb: int = 0) -> Path:
    """A data folder with one small resource in it."""
    (data).mkdir(parents=True, exist_ok=True)
    (data / "settings.json").write_text(f'{{"free_space_reserve_mb": {reserve_mb}}}')
    lesson = data.parent / "lesson.html"
    lesson.write_text("<h1>汉语拼音 第一课</h1>", "utf-8")
    app = Appliance.open(EdgeConfig.load(data))
    try:
        import_files(app, [lesson], resource_id="kept", title="汉语拼音 第一课", kind="html")
    finally:
        app.close()
    return data


# -- the port ------------------------------------------------------------------------

def test_port_already_taken_is_one_line_and_exit_1(tmp_path):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = cli("edge", "serve", "--data", str(tmp_path / "data"), "--port", str(port), "--no-announce")
    line = one_error_line(result)
    assert f"端口 {port} 已被占用" in line and "--port" in line


# -- the data folder -----------------------------------------------------------------

def test_data_folder_under_a_regular_file_is_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    for command in (["edge", "serve", "--no-announce", "--port", str(free_port())], ["edge", "status"]):
        line = one_error_line(cli(*command, "--data", str(tmp_path / "a-file" / "data")))
        assert "无法创建数据目录" in line and "cannot create data folder" in line
    assert (tmp_path / "a-file").read_text() == "not a folder"


@needs_root
def test_data_folder_on_a_read_only_disk_is_a_clear_error(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as mnt:
        line = one_error_line(cli("edge", "status", "--data", str(mnt / "data")))
        assert "无法创建数据目录" in line and "Read-only file system" in line
        line = one_error_line(cli("edge", "status", "--data", str(mnt)))
        assert "不可写" in line and "not writable" in line


@needs_root
def test_import_into_a_data_folder_turned_read_only_changes_nothing(tmp_path):
    with tmpfs(tmp_path / "disk", "size=8m") as mnt:
        data = seeded(mnt / "data")
        before = snapshot(data)
        (tmp_path / "new.pdf").write_bytes(b"%PDF-1.4 new")
        remount(mnt, "ro")
        line = one_error_line(cli("edge", "add-resource", "--data", str(data), str(tmp_path / "new.pdf"),
                                  "--title", "新教案", "--kind", "document"))
        assert "not writable" in line
        remount(mnt, "rw")
        assert snapshot(data) == before


# -- a full disk ---------------------------------------------------------------------

@needs_root
def test_disk_filling_up_during_an_import_stops_it_and_keeps_what_was_stored(tmp_path):
    with tmpfs(tmp_path / "disk", "size=8m") as mnt:
        data = seeded(mnt / "data")
        before = snapshot(data)
        app = Appliance.open(EdgeConfig.load(data))
        try:
            # a download of unknown length (no size hint) runs into the real end of the disk
            with pytest.raises(DiskFullError) as err:
                app.store.put_stream(io.BytesIO(b"v" * (12 * MIB)))
            assert "磁盘已满" in err.value.zh and "disk is full" in err.value.en
            assert err.value.__cause__.errno == 28  # ENOSPC really happened
            assert app.store.put_bytes(b"small").size == 5  # the space of the half file was given back
            app.store.remove(app.store.put_bytes(b"small").sha256)
        finally:
            app.close()
        assert snapshot(data) == before


@needs_root
def test_disk_full_during_a_cli_import_is_one_line_and_changes_nothing(tmp_path):
    with tmpfs(tmp_path / "disk", "size=8m,nr_inodes=64") as mnt:
        data = seeded(mnt / "data")
        before = snapshot(data)
        # use up every file slot but the two SQLite needs for its WAL: bytes are
        # free, yet the import's temporary file gets a real ENOSPC
        filler = mnt / "filler"
        filler.mkdir()
        made = 0
        with pytest.raises(OSError):
            while True:
                (filler / str(made)).touch()
                made += 1
        for n in (made - 1, made - 2):
            (filler / str(n)).unlink()
        (tmp_path / "new.pdf").write_bytes(b"%PDF-1.4 new")
        line = one_error_line(cli("edge", "add-resource", "--data", str(data), str(tmp_path / "new.pdf"),
                                  "--title", "新教案", "--kind", "document"))
        assert "磁盘已满" in line and "nothing stored was changed" in line
        for f in filler.iterdir():
            f.unlink()
        assert snapshot(data) == before


@needs_root
def test_import_that_would_eat_into_the_reserve_is_refused_before_writing(tmp_path):
    with tmpfs(tmp_path / "disk", "size=8m") as mnt:
        data = seeded(mnt / "data", reserve_mb=4)
        before = snapshot(data)
        video = tmp_path / "big.mp4"
        video.write_bytes(b"\0" * (5 * MIB))
        line = one_error_line(cli("edge", "add-resource", "--data", str(data), str(video),
                                  "--title", "认识钟表 微课", "--kind", "video"))
        assert "磁盘空间不足" in line and "须保留 4 MB" in line and "must stay free" in line
        assert snapshot(data) == before


# -- other bad input -----------------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    ("{not json", "not valid JSON"),
    ('{"colour": "red"}', "unknown setting(s): colour"),
    ('{"port": "eighty"}', "setting port has invalid value"),
])
def test_bad_settings_file_is_one_line(tmp_path, content, words):
    (tmp_path / "settings.json").write_text(content)
    line = one_error_line(cli("edge", "status", "--data", str(tmp_path)))
    assert words in line
    assert not (tmp_path / "edge.db").exists()


def test_add_resource_with_bad_metadata_stores_nothing(tmp_path):
    data = seeded(tmp_path / "data")
    before = snapshot(data)
    line = one_error_line(cli("edge", "add-resource", "--data", str(data), str(tmp_path / "lesson.html"),
                              "--title", "新课", "--kind", "movie"))
    assert "kind must be one of" in line
    assert snapshot(data) == before


def test_add_resource_then_status_counts_it(tmp_path):
    data = tmp_path / "data"
    (tmp_path / "song.wav").write_bytes(b"RIFF....WAVE")
    added = cli("edge", "add-resource", "--data", str(data), str(tmp_path / "song.wav"), "--id", "song",
                "--title", "小红帽 歌曲", "--kind", "audio", "--subject", "音乐", "--grade", "二年级")
    assert added.returncode == 0 and "已加入 Added song" in added.stdout
    status = cli("edge", "status", "--data", str(data), "--json")
    assert status.returncode == 0 and '"resources": 1' in status.stdout
