"""The content-addressed store: files by sha256, never half-written, never wrong."""

import hashlib
import io

import pytest

from hub_sync.core.blobstore import INCOMING, BlobStore, is_sha256
from hub_sync.core.errors import BlobNotFoundError, CorruptBlobError, DiskFullError

MIB = 1024 * 1024


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / "content", reserve_bytes=0)


def stored_state(store: BlobStore) -> dict[str, bytes]:
    """Every blob name with its bytes: what 'nothing changed' is checked against."""
    return {sha: store.path_for(sha).read_bytes() for sha in store}


def incoming(store: BlobStore) -> list:
    return list((store.root / INCOMING).iterdir())


def test_file_is_kept_under_its_sha256_split_after_two_characters(store):
    data = "汉语拼音 第一课".encode()
    blob = store.put_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    assert blob.sha256 == sha and blob.size == len(data)
    assert store.path_for(sha) == store.root / sha[:2] / sha[2:]
    assert store.path_for(sha).read_bytes() == data
    assert store.has(sha) and list(store) == [sha]
    assert incoming(store) == []


def test_storing_the_same_bytes_twice_keeps_one_file(store):
    first = store.put_bytes(b"same lesson")
    second = store.put_file(_write(store.root.parent / "copy.txt", b"same lesson"))
    assert first == second
    assert list(store) == [first.sha256]
    assert incoming(store) == []


def test_wrong_expected_hash_is_refused_and_nothing_appears(store):
    store.put_bytes(b"already here")
    before = stored_state(store)
    with pytest.raises(CorruptBlobError) as err:
        store.put_bytes(b"tampered bytes", expected_sha256=hashlib.sha256(b"original").hexdigest())
    assert "sha256" in str(err.value) and "校验失败" in err.value.zh
    assert stored_state(store) == before
    assert incoming(store) == []


def test_stream_longer_than_declared_is_refused_without_a_trace(store):
    before = stored_state(store)
    with pytest.raises(CorruptBlobError) as err:
        store.put_stream(io.BytesIO(b"x" * (3 * MIB)), max_bytes=MIB)
    assert "larger than its declared" in err.value.en
    assert stored_state(store) == before
    assert incoming(store) == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "..", "", "A" * 64, "g" * 64, "ab/cd", "0" * 63])
def test_names_that_are_not_digests_are_refused(store, name):
    assert not is_sha256(name)
    with pytest.raises(BlobNotFoundError):
        store.path_for(name)
    assert not store.has(name)


def test_verify_notices_bytes_that_no_longer_match_their_name(store):
    blob = store.put_bytes(b"a video, pretend" * 1000)
    assert store.verify(blob.sha256)
    path = store.path_for(blob.sha256)
    damaged = bytearray(path.read_bytes())
    damaged[10] ^= 0xFF
    path.write_bytes(bytes(damaged))
    assert not store.verify(blob.sha256)


def test_import_that_would_break_the_reserve_is_refused_before_writing(tmp_path):
    store = BlobStore(tmp_path / "content", reserve_bytes=0)
    kept = store.put_bytes(b"kept")
    store.reserve_bytes = store.free_bytes() - 10 * MIB  # only 10 MB above the reserve
    before = stored_state(store)
    with pytest.raises(DiskFullError) as err:
        store.put_bytes(b"z" * (11 * MIB))
    assert "须保留" in err.value.zh and "must stay free" in err.value.en
    assert err.value.details["needed"] == 11 * MIB
    assert stored_state(store) == before and kept.sha256 in before
    assert incoming(store) == []


def test_leftovers_of_an_interrupted_write_are_never_visible_and_get_cleaned(store):
    good = store.put_bytes(b"complete")
    (store.root / INCOMING / "blob-crashed").write_bytes(b"half a fi")
    assert list(store) == [good.sha256]
    assert store.clean_incoming() == 1
    assert incoming(store) == []
    assert stored_state(store) == {good.sha256: b"complete"}


def test_opening_the_appliance_removes_leftovers_of_a_crash(config):
    from edge_agent.appliance import Appliance

    first = Appliance.open(config)
    first.store.put_bytes(b"lesson")
    (first.store.root / INCOMING / "blob-crashed").write_bytes(b"half")
    first.close()
    second = Appliance.open(config)
    try:
        assert incoming(second.store) == []
        assert len(list(second.store)) == 1
    finally:
        second.close()


def _write(path, data):
    path.write_bytes(data)
    return path


def test_quarantine_moves_a_damaged_blob_aside_so_it_is_fetched_again(store):
    blob = store.put_bytes(b"will decay")
    store.path_for(blob.sha256).write_bytes(b"decayed!!!")
    moved = store.quarantine(blob.sha256)
    assert moved == store.root / ".corrupt" / blob.sha256 and moved.read_bytes() == b"decayed!!!"
    assert not store.has(blob.sha256) and list(store) == []
    assert store.quarantine(blob.sha256) is None
    store.put_bytes(b"will decay")
    assert store.has(blob.sha256) and store.verify(blob.sha256)
