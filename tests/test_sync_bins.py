"""Sync that stays small as the library grows: hash-bin delegations, nothing fetched
twice, gzip on the wire, and the move from the layout before bins. Real hub server,
real appliance, a generated catalogue of thousands (``fixtures.sync.CATALOGUE``)."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import zlib

import httpx
import pytest
from click.testing import CliRunner
from tuf.api.metadata import Metadata, TargetFile

from edge_agent.cli import main
from fixtures.common import SCHOOL
from fixtures.sync import CATALOGUE, SyncEnv
from hub_sync.client.tuf_fetcher import HttpxFetcher
from hub_sync.core.errors import FormatError, LinkError
from hub_sync.formats import tuf_bins
from hub_sync.hub import publisher
from hub_sync.hub.publisher import repo_for


@pytest.fixture
def fetched(monkeypatch):
    """Every URL the appliance's TUF client asks the hub for, in order."""
    urls: list[str] = []
    real = HttpxFetcher._fetch

    def recording(self, url):
        urls.append(url.split("/tuf/", 1)[1])
        return real(self, url)

    monkeypatch.setattr(HttpxFetcher, "_fetch", recording)
    return urls


def _names(urls: list[str]) -> list[str]:
    """Metadata names without their version prefix, and 'target' for any target."""
    out = []
    for url in urls:
        kind, _, name = url.partition("/")
        version, _, rest = name.partition(".")
        out.append("target" if kind == "targets" else rest if version.isdigit() else name)
    return out


def test_a_big_channel_is_spread_over_hash_bins_and_one_change_re_signs_one_bin(env):
    first = env.publish()
    meta = repo_for(env.hub).snapshot_meta(first.snapshot_version)
    bins = sorted(n for n in meta if tuf_bins.is_bin_role(n))
    assert len(bins) == 2 ** tuf_bins.bin_bits(CATALOGUE) == 16  # 2,000 files: 16 bins of ~125
    channel = Metadata.from_bytes((env.hub.repo_dir / "metadata" / "1.yuwen-1.json").read_bytes()).signed
    assert channel.targets == {} and channel.delegations.succinct_roles.bit_length == 4
    env.add("yuwen-1", "r-new", {"index.html": b"<h1>new</h1>"})
    second = env.publish()
    changed = {n for n, m in repo_for(env.hub).snapshot_meta(second.snapshot_version).items() if m.version != meta.get(n, m).version}
    assert changed == {"yuwen-1.json", tuf_bins.succinct_roles("yuwen-1", 4, "k").get_role_for_target(
        next(p for p in repo_for(env.hub).channel_targets("yuwen-1") if "/r-new/" in p)) + ".json"}
    assert second.targets_version == first.targets_version  # the school indexes did not change: not re-signed


def test_an_idle_sync_fetches_only_the_timestamp_and_one_change_only_its_bin(env, fetched):
    env.publish()
    env.sync()
    fetched.clear()
    assert env.sync().fetched.files == 0
    assert _names(fetched) == ["root.json", "timestamp.json"]  # next root (404), timestamp: no index, no bins
    env.add("yuwen-1", "r-new", {"index.html": b"<h1>new</h1>"})
    env.publish()
    fetched.clear()
    result = env.sync()
    assert result.fetched.files == 1 and "r-new" in env.ids()
    names = _names(fetched)
    assert names[:3] == ["root.json", "timestamp.json", "snapshot.json"]
    assert sorted(names[3:]) == sorted(["yuwen-1.json", next(n for n in names if ".bin-" in n)])  # one bin, no index


def test_the_school_index_is_fetched_again_only_when_it_changed_or_the_kept_copy_is_damaged(env, fetched):
    env.publish()
    env.sync()
    kept = env.app.data_dir / "sync" / "index" / "school-index.json"
    kept.write_bytes(kept.read_bytes().replace(b"yuwen", b"yuwex"))
    fetched.clear()
    env.sync()
    assert _names(fetched).count("target") == 1 and json.loads(kept.read_bytes())["school_code"] == SCHOOL


def test_metadata_and_json_answers_are_gzipped_only_for_a_client_that_accepts_it(env):
    state = env.publish()
    name = f"{state.snapshot_version}.snapshot.json"
    plain = (env.hub.repo_dir / "metadata" / name).read_bytes()
    with httpx.Client(base_url=env.hub_url, timeout=10) as client:
        zipped = client.get(f"/tuf/metadata/{name}", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["vary"]
        assert zipped.content == plain  # what TUF checks: the uncompressed bytes
        assert int(zipped.headers["content-length"]) == len(gzip.compress(plain, 6, mtime=0)) < len(plain) / 3
        identity = client.get(f"/tuf/metadata/{name}", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in identity.headers and identity.content == plain
        channels = client.get("/api/v1/hub/channels", headers={"Accept-Encoding": "gzip"})
        assert channels.json()["channels"][0]["id"] == "math-1"


class _GzipBomb(threading.Thread):
    """A 'hub' that answers every request with 200 and a gzip stream of zeros that never ends."""

    ZEROS = b"\0" * (4 * 1024 * 1024)  # ~4 KB on the wire each

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sent = 0

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                stream = zlib.compressobj(9, zlib.DEFLATED, 31)  # a gzip stream that is never finished
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                                 b"Connection: close\r\n\r\n")
                    while self.sent < 200 * 1024 * 1024:  # stops by itself after 200 MB of zeros, if never cut
                        conn.sendall(stream.compress(self.ZEROS) + stream.flush(zlib.Z_SYNC_FLUSH))
                        self.sent += len(self.ZEROS)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.join(5)


def test_a_compressed_answer_that_never_ends_is_cut_off_like_a_plain_one(env):
    env.publish()
    env.sync()
    before = env.state()
    bomb = _GzipBomb()
    bomb.start()
    try:
        env.app.set_identity(hub_url=f"http://127.0.0.1:{bomb.port}")
        with pytest.raises(LinkError, match="exceeding the maximum allowed length"):  # counted after decoding
            env.sync()
        assert bomb.sent < 64 * 1024 * 1024, bomb.sent  # cut off at the length limit, not read to the end
    finally:
        bomb.close()
    assert env.state() == before


def test_the_rsync_transfer_is_compressed_and_the_stored_file_is_the_original(env):
    env.publish()
    env.sync()
    text = "".join(f"第{i}行 汉语拼音 a o e i u ü\n" for i in range(20_000)).encode()
    [blob] = env.add("yuwen-1", "r-text", {"lesson.txt": text})
    env.publish()
    result = env.sync()
    assert result.fetched.transport == "rsync" and result.fetched.bytes_received < len(text) / 5
    assert env.app.store.verify(blob) and env.app.store.path_for(blob).read_bytes() == text


def test_a_target_signed_into_a_bin_it_does_not_hash_to_is_refused(env, caplog):
    env.publish()
    env.sync()
    before = env.state()
    env.add("yuwen-1", "r-new", {"index.html": b"<h1>new</h1>"})
    state = env.publish()
    repo = repo_for(env.hub)
    meta = repo.snapshot_meta(state.snapshot_version)
    [path] = [p for p in repo.channel_targets("yuwen-1") if "/r-new/" in p]
    bins = tuf_bins.succinct_roles("yuwen-1", 4, "k")
    holder = bins.get_role_for_target(path)  # the bin this publish re-signed: the appliance fetches it
    holder_file = repo.metadata_dir / f"{meta[holder + '.json'].version}.{holder}.json"
    md = Metadata.from_bytes(holder_file.read_bytes())
    sha = path.rsplit("/", 1)[1]
    rid = next(r for r in (f"r-stray-{i}" for i in range(100)) if bins.get_role_for_target(f"yuwen-1/{r}/{sha}") != holder)
    stray = TargetFile.from_dict(md.signed.targets[path].to_dict(), f"yuwen-1/{rid}/{sha}")
    stray.unrecognized_fields["custom"] = {**stray.custom, "resource_id": rid}
    md.signed.targets[stray.path] = stray  # signed by the hub's own key, in a bin it does not hash to
    md.signatures.clear()
    md.sign(env.hub.online_signer)
    holder_file.write_bytes(md.to_bytes())
    with pytest.raises(FormatError, match="not trusted for it"):
        env.sync()
    assert env.state() == before


def test_a_content_pack_carries_the_bins(tmp_path, hub_db):
    from provisioning import stick
    from provisioning.content_pack import write_pack
    from provisioning.sneakernet import import_usb

    env = SyncEnv(tmp_path, start=False, catalogue=CATALOGUE, db_url=hub_db())
    try:
        env.publish()
        write_pack(env.hub, SCHOOL, stick.school_dir(tmp_path / "stick", SCHOOL))
        names = {p.name for p in (stick.school_dir(tmp_path / "stick", SCHOOL) / "content" / "metadata").iterdir()}
        assert sum(".bin-" in n for n in names) == 16
        result = import_usb(env.app, tmp_path / "stick")
        assert result["content"]["resources"] == CATALOGUE and len(env.state()[0]) == CATALOGUE
    finally:
        env.close()


def _legacy_index(channels, school_code, hidden=frozenset()):
    """The school index before hash bins: every target path of the school's channels."""
    chosen = [c for c in channels.channels_for(school_code) if c.id not in hidden]
    paths = sorted(p for c in chosen for p in publisher.channel_targets(channels, c.id))
    return publisher.canonical_json({"school_code": school_code, "targets": paths, "channels": [
        {"id": c.id, "title": c.title, "mandatory": c.mandatory} for c in chosen]})


def test_a_hub_that_published_the_old_layout_moves_to_bins_with_one_publish_and_the_appliance_follows(tmp_path,
                                                                                                     monkeypatch):
    with monkeypatch.context() as old_hub:  # the hub as it was: channel roles list their files, the index every path
        old_hub.setattr(tuf_bins, "BIN_TARGETS", 10 ** 9)
        old_hub.setattr(publisher, "school_index", _legacy_index)
        env = SyncEnv(tmp_path, catalogue=CATALOGUE)  # provisioning publishes too
        env.publish()
    try:
        metadata = env.hub.repo_dir / "metadata"
        assert not list(metadata.glob("*.bin-*")) and len(repo_for(env.hub).channel_targets("yuwen-1")) == CATALOGUE
        env.sync()
        before = env.state()
        assert len(before[0]) == CATALOGUE

        out = CliRunner().invoke(main, ["hub", "publish", "--data", str(env.hub.data_dir)])
        assert out.exit_code == 0, out.output
        assert len(list(metadata.glob("*.yuwen-1.bin-*"))) == 16

        result = env.sync()  # the next sync, same pinned root, no provisioning
        assert result.fetched.files == 0 and env.state()[0] == before[0]
        assert len(list((env.app.data_dir / "sync" / "tuf").glob("yuwen-1.bin-*.json"))) == 16
        env.add("yuwen-1", "r-after", {"index.html": b"<h1>after</h1>"})
        env.publish()
        env.sync()
        assert "r-after" in env.ids()
    finally:
        env.close()


def test_the_bin_count_grows_with_the_channel_and_never_shrinks():
    assert tuf_bins.bin_bits(tuf_bins.BIN_TARGETS) == 0
    assert tuf_bins.bin_bits(tuf_bins.BIN_TARGETS + 1) == 1
    assert tuf_bins.bin_bits(20_000) == 8 and 20_000 / 2 ** 8 < tuf_bins.BIN_TARGETS
    assert tuf_bins.bin_bits(10 ** 7) == tuf_bins.MAX_BIN_BITS  # the snapshot stays in the low hundreds a channel
    assert tuf_bins.bin_bits(10, published_bits=5) == 5
