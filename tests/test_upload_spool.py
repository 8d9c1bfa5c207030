"""Uploads go to disk while they are hashed, never whole into memory: the spool
refuses a file past the limit without keeping anything, and keeps an accepted one
by a rename into the store."""

from __future__ import annotations

import io
import os
import tracemalloc

import pytest

from edge_agent.spaces.errors import TooLargeError
from edge_agent.spaces.filetypes import sniff
from edge_agent.spaces.upload_spool import HEAD_BYTES, Spooled, spool
from hub_sync.core.blobstore import BlobStore

MIB = 1024 * 1024


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / "content", reserve_bytes=0)


def incoming(store: BlobStore) -> list[str]:
    return sorted(p.name for p in (store.root / ".incoming").iterdir())


def test_a_large_upload_is_spooled_without_holding_it_in_memory(store, tmp_path):
    source = tmp_path / "video.bin"
    source.write_bytes(os.urandom(24 * MIB))
    tracemalloc.start()
    with source.open("rb") as stream:
        upload = spool(store, "video.bin", stream, 100 * MIB)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * MIB  # a chunk and the head, not the 24 MiB
    assert upload.size == 24 * MIB and len(upload.head) == HEAD_BYTES and not upload.complete_head
    blob = upload.put(store)
    assert store.path_for(blob.sha256).read_bytes() == source.read_bytes()
    assert incoming(store) == []
    upload.discard()  # after put: nothing left to drop, no error


def test_past_the_limit_nothing_is_kept(store):
    with pytest.raises(TooLargeError) as refused:
        spool(store, "big.bin", io.BytesIO(os.urandom(3 * MIB)), 2 * MIB)
    assert "too large" in refused.value.en
    assert incoming(store) == [] and list(store) == []


def test_discard_drops_a_spooled_file_that_was_refused_later(store):
    upload = spool(store, "a.txt", io.BytesIO("作业 homework\n".encode() * 10), MIB)
    assert incoming(store) and upload.complete_head
    assert sniff(upload.head, complete=upload.complete_head)[1] == "document"
    upload.discard()
    assert incoming(store) == [] and list(store) == []


def test_text_cut_in_the_middle_of_a_character_is_still_text(store):
    text = "拼音".encode() * (HEAD_BYTES // 6 + 10)  # the head ends inside a 3-byte character
    upload = spool(store, "notes.txt", io.BytesIO(text), MIB)
    assert len(upload.head) == HEAD_BYTES and HEAD_BYTES % 3 != 0
    assert sniff(upload.head, complete=upload.complete_head)[1] == "document"
    upload.discard()


def test_bytes_from_a_caller_are_kept_as_they_were(store):
    upload = Spooled.of_bytes("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    blob = upload.put(store)
    assert store.path_for(blob.sha256).read_bytes().startswith(b"\x89PNG")
