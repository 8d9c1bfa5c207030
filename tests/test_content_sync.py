"""Down, end to end on loopback: a real hub (HTTP + real rsync daemon), a real
provisioned appliance, python-tuf's ngclient. Good syncs and every refusal, with a
catalogue of thousands in hash bins (``fixtures.sync.CATALOGUE``)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from fixtures.common import SCHOOL, sha
from fixtures.servers import free_port
from fixtures.sync import CATALOGUE
from edge_agent.cli import main
from hub_sync.client import tuf_fetcher
from hub_sync.formats import tuf_repo
from hub_sync.core.errors import CorruptBlobError, FormatError, LinkError, ReplayError, SignatureError, SyncError
from hub_sync.hub.channels import Channels
from hub_sync.core.keys import generate_key

pytestmark = pytest.mark.slow  # each test serves a real hub of 2,000 resources and syncs from it: 3-12 s


@pytest.fixture
def synced(env):
    """An appliance that holds catalogue version N of two resources."""
    env.add("yuwen-1", "r1", {"index.html": b"<h1>a o e</h1>", "picture.svg": b"<svg/>"}, chapter="汉语拼音")
    env.add("yuwen-1", "r2", {"audio.wav": os.urandom(200_000)})
    env.publish()
    env.sync()
    return env


def test_sync_fetches_with_rsync_and_switches_the_catalogue(synced):
    catalogue, blobs, version = synced.state()
    assert synced.ids() == ["r1", "r2"] and len(catalogue) == 2 + CATALOGUE
    r1 = synced.app.catalogue.get("r1")
    assert r1.channel == "yuwen-1" and r1.chapter == "汉语拼音" and r1.grade == "一年级"
    assert [f.path for f in r1.files] == ["index.html", "picture.svg"]  # the main file stays first
    for f in r1.files:
        assert synced.app.store.verify(f.sha256)
    assert len(blobs) == 3 + CATALOGUE and int(version) >= 1
    assert synced.app.status()["catalogue_version"] == int(version)
    assert synced.app.status()["last_sync_error"] == "-"


def test_second_sync_fetches_only_the_missing_files(synced):
    new = os.urandom(50_000)
    synced.add("yuwen-1", "r3", {"video.mp4": new, "index.html": b"<h1>a o e</h1>"})  # one file already held
    synced.publish()
    result = synced.sync()
    assert result.fetched.files == 1 and result.fetched.transport == "rsync"
    assert result.fetched.bytes_received < len(new) * 1.1
    assert synced.app.store.has(sha(new))
    assert synced.sync().fetched.files == 0  # up to date: nothing fetched


def test_dropped_resource_is_removed_and_its_unshared_files_collected(synced):
    audio = synced.app.catalogue.get("r2").files[0].sha256
    Channels(synced.hub.db).remove_resource("r2")
    synced.publish()
    synced.sync()
    assert synced.ids() == ["r1"]
    assert not synced.app.store.has(audio)
    assert all(synced.app.store.has(f.sha256) for f in synced.app.catalogue.get("r1").files)


def test_local_school_resources_survive_a_sync(synced):
    from edge_agent.library.catalogue import Resource, ResourceFile

    blob = synced.app.store.put_bytes(b"teacher's own slides")
    synced.app.catalogue.upsert(Resource("own-1", "自制课件", "document", source="teacher",
                                         files=[ResourceFile("s.pdf", blob.sha256, blob.size, "application/pdf")]))
    Channels(synced.hub.db).remove_resource("r1")
    synced.publish()
    synced.sync()
    assert synced.app.catalogue.get("own-1").title == "自制课件" and synced.app.store.has(blob.sha256)


def test_old_catalogue_is_served_until_the_switch(synced):
    before = len(synced.state()[0])
    synced.add("yuwen-1", "r9", {"big.bin": os.urandom(300_000)})
    synced.publish()
    seen = []
    other = synced.app  # another thread's connection sees only committed data

    def look(_line: str) -> None:
        t = threading.Thread(target=lambda: seen.append(other.catalogue.search(limit=1)[0]))
        t.start()
        t.join()

    synced.sync(progress=look)
    assert seen and all(count == before for count in seen)  # r9 appears only with the switch
    assert "r9" in synced.ids()


def test_outside_the_window_metadata_is_checked_but_nothing_downloaded(synced):
    before = synced.state()
    synced.add("yuwen-1", "r7", {"x.bin": os.urandom(10_000)})
    synced.publish()
    result = synced.sync(allow_download=False)
    assert result.waiting_for_window and result.missing_bytes == 10_000
    assert synced.state() == before


def test_http_range_is_the_fallback_when_the_rsync_port_is_closed(synced):
    data = os.urandom(120_000)
    synced.add("math-1", "m1", {"lesson.bin": data})
    Channels(synced.hub.db).subscribe(SCHOOL, "math-1", True)
    synced.publish()
    synced.app.set_identity(rsync_url=f"rsync://127.0.0.1:{free_port()}/content")  # nothing listens there
    # half of the file is already staged from a cut download: only the rest is asked for
    staging = synced.app.data_dir / "sync" / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    (staging / f"{sha(data)}.http-part").write_bytes(data[:60_000])
    result = synced.sync()
    assert result.fetched.transport == "http" and result.fetched.bytes_received == 60_000
    assert synced.app.store.verify(sha(data)) and synced.app.catalogue.get("m1").channel == "math-1"
    assert not any(staging.iterdir())


# -- refusals: each is refused with a clear logged reason and changes nothing ----------------

def _refused(env, exc_type, words, caplog):
    before = env.state()
    with caplog.at_level(logging.WARNING, logger="edge_agent.sync.content_sync"):
        with pytest.raises(exc_type) as info:
            env.sync()
    assert any(w in info.value.en for w in words), info.value.en
    assert any("sync refused or failed" in r.getMessage() for r in caplog.records)
    assert env.state() == before
    assert env.app.status()["last_sync_error"] != "-"
    staging = env.app.data_dir / "sync" / "staging"
    assert not staging.exists() or not [p for p in staging.rglob("*") if p.is_file()]
    return info.value


def _role_file_of(env, target_path_part: str):
    """The metadata file of the last moment that lists a target whose path contains
    ``target_path_part`` (a hash bin of the big channel)."""
    from hub_sync.hub.publisher import repo_for

    [path] = [p for p in repo_for(env.hub).moment_files() if f'/{target_path_part}/'.encode() in p.read_bytes()]
    assert ".bin-" in path.name
    return path


def test_tampered_channel_manifest_is_refused(synced, caplog):
    synced.add("yuwen-1", "r5", {"a.bin": b"new"})
    synced.publish()
    path = _role_file_of(synced, "r5")
    tampered = path.read_bytes().replace(b'"path": "a.bin"', b'"path": "b.bin"')
    assert tampered != path.read_bytes()
    path.write_bytes(tampered)
    _refused(synced, SignatureError, ["bad signature"], caplog)


def test_tampered_school_index_is_refused(synced, caplog):
    Channels(synced.hub.db).subscribe(SCHOOL, "math-1", True)  # a new index, which the appliance must fetch
    state = synced.publish()
    from tuf.api.metadata import Metadata

    targets = Metadata.from_bytes((synced.hub.repo_dir / "metadata" / f"{state.targets_version}.targets.json").read_bytes())
    index_sha = targets.signed.targets[f"schools/{SCHOOL}.json"].hashes["sha256"]
    blob = synced.hub.store.path_for(index_sha)
    blob.write_bytes(blob.read_bytes().replace(b"math-1", b"math-2"))
    _refused(synced, (CorruptBlobError, FormatError), ["mismatch"], caplog)


def test_rollback_to_an_older_version_is_refused(synced, caplog):
    meta = synced.hub.repo_dir / "metadata"
    old_timestamp = (meta / "timestamp.json").read_bytes()
    synced.add("yuwen-1", "r5", {"a.bin": b"new"})
    synced.publish()
    synced.sync()
    (meta / "timestamp.json").write_bytes(old_timestamp)  # a replayed older moment
    _refused(synced, ReplayError, ["rollback"], caplog)


def test_expired_metadata_is_refused(synced, caplog, monkeypatch):
    monkeypatch.setattr(tuf_repo, "SNAPSHOT_LIFETIME", timedelta(seconds=-60))
    synced.add("yuwen-1", "r5", {"a.bin": b"new"})
    synced.publish()
    _refused(synced, ReplayError, ["expired"], caplog)


def test_mix_and_match_of_manifests_from_different_moments_is_refused(synced, caplog):
    synced.add("yuwen-1", "r5", {"a.bin": b"new"})
    synced.publish()
    path = _role_file_of(synced, "r5")
    v, name = path.name.split(".", 1)
    shutil.copy(path.with_name(f"{int(v) - 1}.{name}"), path)  # the bin of the moment before, under the new name
    _refused(synced, ReplayError, ["mix-and-match"], caplog)


def test_metadata_signed_by_an_unknown_key_is_refused(synced, caplog):
    generate_key(synced.hub.data_dir / "keys" / "online.pem")  # a key the pinned root never listed
    synced.add("yuwen-1", "r5", {"a.bin": b"new"})
    synced.publish()
    _refused(synced, SignatureError, ["unknown key"], caplog)


def test_file_larger_than_declared_is_refused_over_rsync(synced, caplog):
    data = b"declared" * 100
    [blob_sha] = synced.add("yuwen-1", "r5", {"a.bin": data})
    synced.publish()
    synced.hub.store.path_for(blob_sha).write_bytes(data + os.urandom(5_000))  # the hub now sends more
    _refused(synced, CorruptBlobError, ["larger than declared"], caplog)


def test_file_larger_than_declared_is_cut_off_over_http(synced, caplog):
    data = b"declared" * 100
    [blob_sha] = synced.add("yuwen-1", "r5", {"a.bin": data})
    synced.publish()
    synced.hub.store.path_for(blob_sha).write_bytes(data + os.urandom(500_000))
    synced.app.set_identity(rsync_url=f"rsync://127.0.0.1:{free_port()}/content")
    _refused(synced, CorruptBlobError, ["larger than its declared"], caplog)


@pytest.mark.parametrize("bad_path", ["../../../etc/cron.d/evil", "/etc/passwd", "a/../../b", "a\\..\\b"])
def test_manifest_path_that_leaves_the_store_is_refused(synced, caplog, bad_path):
    blob = synced.hub.store.put_bytes(b"evil")
    Channels(synced.hub.db).put_resource("r5", "yuwen-1", {"title": "x", "kind": "document"},
                                         [{"path": bad_path, "sha256": blob.sha256, "size": 4, "mime": "text/plain"}])
    synced.publish()
    _refused(synced, FormatError, ["leave its folder"], caplog)


class _Garbage(threading.Thread):
    """A 'hub' that answers every request with 200 and nonsense, or never answers."""

    def __init__(self, hang: bool) -> None:
        super().__init__(daemon=True)
        self.hang = hang
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if not self.hang:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 23\r\nConnection: close\r\n\r\n{\"signed\": garbage ...}")
                conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not on Linux
        self.sock.close()
        for c in self.conns:
            c.close()
        self.join(5)


@pytest.mark.parametrize("hang", [False, True], ids=["garbage", "hangs"])
def test_hub_that_answers_garbage_or_hangs_is_refused(synced, caplog, monkeypatch, hang):
    monkeypatch.setattr(tuf_fetcher, "READ_TIMEOUT_S", 1.5)
    fake = _Garbage(hang)
    fake.start()
    try:
        synced.app.set_identity(hub_url=f"http://127.0.0.1:{fake.port}")
        err = _refused(synced, LinkError if hang else FormatError, ["Timeout" if hang else "invalid"], caplog)
        assert isinstance(err, SyncError)
    finally:
        fake.close()


def test_appliance_follows_a_root_signed_key_rotation(synced):
    from hub_sync.hub.publisher import rotate_online_key

    rotate_online_key(synced.hub)
    synced.add("yuwen-1", "r5", {"a.bin": b"after rotation"})
    synced.publish()
    synced.sync()
    assert "r5" in [r[0] for r in synced.state()[0]]
    assert (synced.app.data_dir / "sync" / "tuf" / "root_history" / "2.root.json").is_file()


def test_after_a_key_rotation_acknowledgements_verify_with_the_new_key_and_old_boxes_still_open(synced):
    from edge_agent.sync.hub_key import load_hub_key
    from edge_agent.sync.usage_sync import upload_pending
    from hub_sync.hub.downlink import hub_box_opener
    from hub_sync.formats.sealed_box import seal_to

    synced.sync()
    sealed_before = seal_to(load_hub_key(synced.app.data_dir), "a space sealed before".encode())
    synced.app.journal.append("student:1", "viewed", "resource:r1", {})
    result = CliRunner().invoke(main, ["hub", "rotate-key", "--data", str(synced.hub.data_dir)])
    assert result.exit_code == 0 and "New online key" in result.output
    with pytest.raises(SignatureError, match="not signed by the hub"):  # the running hub signs with the new key
        upload_pending(synced.app, synced.hub_url)
    assert synced.app.journal.pending_count() == 1                      # nothing pruned, nothing lost
    synced.sync()                                                       # the metadata refresh brings root v2
    assert upload_pending(synced.app, synced.hub_url).batches == 1
    assert synced.app.journal.pending_count() == 0
    assert hub_box_opener(synced.hub)(sealed_before) == "a space sealed before".encode()


def test_unprovisioned_appliance_is_told_to_provision(tmp_path):
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig
    from edge_agent.sync.content_sync import sync_content

    app = Appliance.open(EdgeConfig.load(tmp_path / "e", {"free_space_reserve_mb": 1, "advertise": False}))
    try:
        with pytest.raises(SyncError, match="provision apply"):
            sync_content(app)
    finally:
        app.close()


def test_edge_channels_and_subscribe_commands_talk_to_the_hub(synced):
    from click.testing import CliRunner

    from edge_agent.cli import main

    data = str(synced.app.data_dir)
    synced.add("math-1", "m1", {"count.html": b"<h1>1 2 3</h1>"})
    synced.publish()
    runner = CliRunner()
    listing = runner.invoke(main, ["edge", "channels", "--data", data])
    assert listing.exit_code == 0 and "* yuwen-1" in listing.output and "  math-1" in listing.output
    out = runner.invoke(main, ["edge", "subscribe", "--data", data, "math-1"])
    assert out.exit_code == 0, out.output
    synced.sync()
    assert synced.app.catalogue.get("m1").channel == "math-1"
    refused = runner.invoke(main, ["edge", "unsubscribe", "--data", data, "yuwen-1"])
    assert refused.exit_code == 1 and "mandatory" in refused.output
    out = runner.invoke(main, ["edge", "unsubscribe", "--data", data, "math-1"])
    assert out.exit_code == 0
    synced.sync()
    assert "m1" not in [r[0] for r in synced.state()[0]]
