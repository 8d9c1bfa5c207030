"""Content from a stick enters the store only hash-checked, durable, and resumable."""

import hashlib
import os
import signal
import subprocess
import sys

import pytest

from hub_sync.core.blobstore import INCOMING, BlobStore
from hub_sync.core.errors import CorruptBlobError, DiskFullError
from provisioning.verified_copy import BUFFER_BYTES, Wanted, import_verified


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


def make_file(folder, name, size):
    data = os.urandom(size)
    path = folder / name
    path.write_bytes(data)
    return Wanted(path, hashlib.sha256(data).hexdigest(), size)


@pytest.mark.parametrize("direct", [True, False], ids=["o_direct", "page_cache"])
def test_files_of_any_size_land_byte_exact_whether_written_direct_or_through_the_page_cache(tmp_path, direct):
    folder = tmp_path / "pack"
    folder.mkdir()
    # empty, under one sector, just off a sector, and more than one copy buffer with a ragged end
    sizes = [0, 1, 4095, 4097, BUFFER_BYTES + 12_345]
    items = [make_file(folder, f"f{n}", n) for n in sizes]
    store = BlobStore(tmp_path / "store", reserve_bytes=0)
    assert import_verified(store, items, direct=direct) == sum(sizes)
    for item in items:
        assert store.size_of(item.sha256) == item.size
        assert store.verify(item.sha256)
    assert list((store.root / INCOMING).iterdir()) == []


def test_damage_in_the_last_partial_block_of_a_big_file_is_refused_and_nothing_enters_the_store(tmp_path):
    folder = tmp_path / "pack"
    folder.mkdir()
    item = make_file(folder, "big", BUFFER_BYTES + 5_000)
    data = bytearray(item.source.read_bytes())
    data[-1] ^= 0x01
    item.source.write_bytes(bytes(data))
    store = BlobStore(tmp_path / "store", reserve_bytes=0)
    with pytest.raises(CorruptBlobError, match="hash check"):
        import_verified(store, [item])
    assert list(store) == []
    assert list((store.root / INCOMING).iterdir()) == []


KILL_MID_IMPORT = """
import os, signal, sys
from pathlib import Path
from hub_sync.core.blobstore import BlobStore
from provisioning.verified_copy import Wanted, import_verified

items = [Wanted(Path(p), s, int(n)) for p, s, n in (line.split() for line in sys.stdin)]
seen = []

def progress(size):
    seen.append(size)
    if len(seen) == 5:  # the power goes off while the fifth file's neighbours are being copied
        os.kill(os.getpid(), signal.SIGKILL)

import_verified(BlobStore(sys.argv[1], reserve_bytes=0), items, progress, threads=2, commit_bytes=2 * int(sys.argv[2]))
"""


def test_a_killed_import_leaves_no_half_file_under_a_real_name_and_the_next_run_carries_on(tmp_path):
    size = 300_000
    items = pack(tmp_path, n=8, size=size)
    root = tmp_path / "store"
    lines = "".join(f"{i.source} {i.sha256} {i.size}\n" for i in items)
    killed = subprocess.run([sys.executable, "-c", KILL_MID_IMPORT, str(root), str(size)], input=lines, text=True,
                            capture_output=True, timeout=60, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = BlobStore(root, reserve_bytes=0)
    kept = list(store)
    # committed every two files: four are in place and whole, the rest only under temporary names
    assert sorted(kept) == sorted(i.sha256 for i in items[:4])
    assert all(store.verify(sha) and store.size_of(sha) == size for sha in kept)
    assert import_verified(store, items) == 4 * size  # the next run copies only what was not committed
    assert all(store.has(i.sha256) and store.verify(i.sha256) for i in items)
    store.clean_incoming()  # what the appliance does at start: the killed run's temporary files go
    assert list((store.root / INCOMING).iterdir()) == []
