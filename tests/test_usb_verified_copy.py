"""Content from a stick enters the store only hash-checked, durable, and resumable."""

import hashlib
import os

import pytest

from hub_sync.blobstore import INCOMING, BlobStore
from hub_sync.errors import CorruptBlobError, DiskFullError
from provisioning.verified_copy import Wanted, import_verified


def pack(tmp_path, n=6, size=300_000):
    folder = tmp_path / "pack"
    folder.mkdir()
    items = []
    for i in range(n):
        data = os.urandom(size)
        path = folder / f"f{i}"
        path.write_bytes(data)
        items.append(Wanted(path, hashlib.sha256(data).hexdigest(), size))
    return items


def test_every_file_lands_under_its_hash_and_a_second_run_copies_nothing(tmp_path):
    items = pack(tmp_path)
    store = BlobStore(tmp_path / "store", reserve_bytes=0)
    seen = []
    assert import_verified(store, items, progress=seen.append) == sum(i.size for i in items)
    assert sum(seen) == sum(i.size for i in items)
    assert all(store.has(i.sha256) and store.verify(i.sha256) for i in items)
    assert import_verified(store, items) == 0
    assert list((store.root / INCOMING).iterdir()) == []


def test_changed_file_is_refused_and_the_good_ones_are_kept_for_the_next_run(tmp_path):
    items = pack(tmp_path)
    bad = items[3]
    data = bytearray(bad.source.read_bytes())
    data[1000] ^= 0xFF
    bad.source.write_bytes(bytes(data))
    store = BlobStore(tmp_path / "store", reserve_bytes=0)
    with pytest.raises(CorruptBlobError, match="hash check"):
        import_verified(store, items, threads=1)
    assert not store.has(bad.sha256)
    assert store.has(items[0].sha256) and store.verify(items[0].sha256)
    assert list((store.root / INCOMING).iterdir()) == []


def test_file_longer_or_shorter_than_declared_is_refused(tmp_path):
    [item] = pack(tmp_path, n=1)
    store = BlobStore(tmp_path / "store", reserve_bytes=0)
    with pytest.raises(CorruptBlobError, match="wrong size"):
        import_verified(store, [Wanted(item.source, item.sha256, item.size - 1)])
    assert list(store) == []


def test_symlink_on_the_stick_is_not_followed(tmp_path):
    secret = tmp_path / "device-secret"
    secret.write_bytes(b"private key")
    link = tmp_path / "link"
    link.symlink_to(secret)
    store = BlobStore(tmp_path / "store", reserve_bytes=0)
    with pytest.raises(CorruptBlobError, match="symbolic link"):
        import_verified(store, [Wanted(link, hashlib.sha256(b"private key").hexdigest(), 11)])
    assert list(store) == []


def test_not_enough_disk_is_refused_before_a_byte_is_written(tmp_path):
    items = pack(tmp_path, n=2)
    store = BlobStore(tmp_path / "store", reserve_bytes=10 ** 15)
    with pytest.raises(DiskFullError):
        import_verified(store, items)
    assert list(store) == [] and list((store.root / INCOMING).iterdir()) == []
