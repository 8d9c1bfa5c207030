"""The usage batch: a compact, compressed, hash-chained run of journal events (pure, no I/O).

Wire layout of a batch payload (the bytes a device signs in a ``usage-batch`` DSSE
envelope)::

    b"SEB1" | u16 header length (big endian) | header (canonical JSON) | zlib body

The header is readable without decompressing, so the hub can find the device's key
before it touches the body::

    {"v": 1, "device": "edge-…", "school": "4401020301", "first": 101, "last": 4100,
     "prev": "<sha256 hex of the previous batch payload, or ''>", "t0": <ms>, "cols": "hHHHH"}

The body is columnar: one table of distinct strings (actors, verbs, objects, event
data as canonical JSON; NUL-separated UTF-8) and five fixed-width little-endian integer
columns (timestamp delta in ms, then string indices of actor, verb, object, data),
each with the narrowest array type that holds it (``cols``). Repeated ids become small
integers and small deltas become runs of zero bytes, which zlib then squeezes;
decoding is ``array.frombytes`` plus C iterators, so the hub spends little Python per
event. Sequence numbers are contiguous from ``first`` to ``last`` and are the order;
timestamps are kept to the millisecond and may go backwards (a wrong clock never
reorders anything).

The batch hash is sha256 of the whole payload; the next batch names it as ``prev``.
"""

from __future__ import annotations

import array
import hashlib
import itertools
import json
import struct
import sys
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, NamedTuple

from hub_sync.core.const import MIB
from hub_sync.core.errors import FormatError
from hub_sync.formats.envelope import content_type

BATCH_KIND = "usage-batch"  # the DSSE payload type a device signs a batch as
BATCH_CONTENT_TYPE = content_type(BATCH_KIND)
MAGIC = b"SEB1"
FORMAT_VERSION = 1
ZLIB_LEVEL = 9
MAX_HEADER_BYTES = 4096
MAX_BODY_RAW_BYTES = 256 * MIB   # a decompression bomb stops here
MAX_EVENTS_PER_BATCH = 1_000_000
SEPARATOR = "\x00"
# Signed then unsigned candidates, narrowest first (array type codes, fixed sizes below).
_SIGNED = (("b", 1), ("h", 2), ("i", 4), ("q", 8))
_UNSIGNED = (("B", 1), ("H", 2), ("I", 4), ("Q", 8))
_SIZES = dict(_SIGNED + _UNSIGNED)
_BIG_ENDIAN = sys.byteorder == "big"


class UsageEvent(NamedTuple):
    """One journal event as it travels up (the journal's own Event has the same fields)."""

    seq: int
    ts: float
    actor: str
    verb: str
    object: str
    data: dict[str, Any]


@dataclass(frozen=True)
class BatchHeader:
    device_id: str
    school_code: str
    first_seq: int
    last_seq: int
    prev_hash: str

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1


@dataclass(frozen=True)
class Batch:
    """A decoded batch: header, its hash, and columns ready to store."""

    header: BatchHeader
    hash: str
    strings: list[str]
    ts_ms: list[int]
    actor: array.array
    verb: array.array
    object: array.array
    data: array.array

    def columns(self) -> tuple[Iterable, ...]:
        """Iterators over seq, ts (seconds), actor, verb, object, data JSON: C iterators, no Python per event."""
        s = self.strings.__getitem__
        return (range(self.header.first_seq, self.header.last_seq + 1), map((1000).__rtruediv__, self.ts_ms),
                map(s, self.actor), map(s, self.verb), map(s, self.object), map(s, self.data))

    def rows(self) -> Iterator[tuple[int, float, str, str, str, str]]:
        """(seq, ts seconds, actor, verb, object, data JSON) in sequence order."""
        return zip(*self.columns())

    def events(self) -> list[UsageEvent]:
        """The batch as events (data parsed); for tests, exports and small batches."""
        return [UsageEvent(seq, round(ts, 3), a, v, o, json.loads(d)) for seq, ts, a, v, o, d in self.rows()]


def batch_hash(payload: bytes) -> str:
    """The hash that names a batch (and that the next batch chains to)."""
    return hashlib.sha256(payload).hexdigest()


def data_json(data: dict[str, Any] | None) -> str:
    """Canonical JSON of an event's data (the same text the journal stores)."""
    return json.dumps(data or {}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def encode_batch(events: Iterable, device_id: str, school_code: str, prev_hash: str = "") -> bytes:
    """Encode events (objects with seq, ts, actor, verb, object, data) as a batch payload.

    Events must have contiguous sequence numbers in order; the same events and
    ``prev_hash`` always give the same bytes.
    """
    events = list(events)
    if not events:
        raise FormatError("没有要打包的使用记录", "no events to put in a batch")
    first, last = events[0].seq, events[-1].seq
    if [e.seq for e in events] != list(range(first, last + 1)):
        raise FormatError("使用记录的序号不连续", "event sequence numbers are not contiguous")
    index: dict[str, int] = {}

    def intern(value: str) -> int:
        if SEPARATOR in value:
            raise FormatError("使用记录中含有非法字符", "event field contains a NUL character")
        return index.setdefault(value, len(index))

    ms = [int(round(e.ts * 1000)) for e in events]
    t0 = ms[0]
    deltas = [0] + [b - a for a, b in zip(ms, ms[1:])]
    columns = [deltas]
    for field in ("actor", "verb", "object"):
        columns.append([intern(getattr(e, field)) for e in events])
    columns.append([intern(d if isinstance(d, str) else data_json(d)) for d in (e.data for e in events)])
    codes, packed = "", []
    for i, col in enumerate(columns):
        arr = _narrowest(col, signed=(i == 0))
        codes += arr.typecode
        if _BIG_ENDIAN:
            arr.byteswap()
        packed.append(arr.tobytes())
    strings = SEPARATOR.join(index).encode("utf-8")
    body = zlib.compress(struct.pack(">I", len(strings)) + strings + b"".join(packed), ZLIB_LEVEL)
    header = json.dumps({"v": FORMAT_VERSION, "device": device_id, "school": school_code, "first": first,
                         "last": last, "prev": prev_hash, "t0": t0, "cols": codes},
                        ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return MAGIC + struct.pack(">H", len(header)) + header + body


def read_header(payload: bytes) -> BatchHeader:
    """The header alone (cheap; used to find the device's key before verifying)."""
    return _header(payload)[0]


def decode_batch(payload: bytes) -> Batch:
    """Decode and check a batch payload; FormatError for anything malformed."""
    header, raw, end = _header(payload)
    n = header.count
    try:
        d = zlib.decompressobj()
        body = d.decompress(payload[end:], MAX_BODY_RAW_BYTES)
        if d.unconsumed_tail or not d.eof:
            raise FormatError("使用数据包过大或不完整", "batch body too large or truncated")
    except zlib.error as exc:
        raise FormatError("使用数据包无法解压", f"batch body does not decompress: {exc}") from exc
    codes = raw["cols"]
    if not isinstance(codes, str) or len(codes) != 5 or any(c not in _SIZES for c in codes):
        raise FormatError("使用数据包的列格式无效", "bad column types in batch header")
    if len(body) < 4:
        raise FormatError("使用数据包内容不完整", "batch body truncated")
    (slen,) = struct.unpack(">I", body[:4])
    pos = 4 + slen
    if len(body) != pos + n * sum(_SIZES[c] for c in codes):
        raise FormatError("使用数据包的长度与记录数不符", "batch body length does not match its event count")
    try:
        strings = body[4:pos].decode("utf-8").split(SEPARATOR)
    except UnicodeDecodeError as exc:
        raise FormatError("使用数据包含有无效文字", "batch strings are not UTF-8") from exc
    cols = []
    for code in codes:
        arr = array.array(code)
        arr.frombytes(body[pos:pos + n * _SIZES[code]])
        if _BIG_ENDIAN:
            arr.byteswap()
        cols.append(arr)
        pos += n * _SIZES[code]
    for arr in cols[1:]:
        if min(arr) < 0 or max(arr) >= len(strings):
            raise FormatError("使用数据包引用了不存在的字符串", "batch refers to a string it does not contain")
    ts = list(itertools.accumulate(cols[0], initial=raw["t0"]))[1:]
    return Batch(header, batch_hash(payload), strings, ts, *cols[1:])


def _header(payload: bytes) -> tuple[BatchHeader, dict, int]:
    if not isinstance(payload, (bytes, bytearray)) or payload[:4] != MAGIC or len(payload) < 6:
        raise FormatError("不是使用数据包", "not a usage batch")
    (hlen,) = struct.unpack(">H", payload[4:6])
    if hlen > MAX_HEADER_BYTES or len(payload) < 6 + hlen:
        raise FormatError("使用数据包头部无效", "bad batch header length")
    try:
        raw = json.loads(payload[6:6 + hlen])
        header = BatchHeader(str(raw["device"]), str(raw["school"]), int(raw["first"]), int(raw["last"]), str(raw["prev"]))
        if raw["v"] != FORMAT_VERSION or not isinstance(raw["t0"], int):
            raise ValueError("unsupported version or t0")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FormatError("使用数据包头部无效", f"bad batch header: {exc}") from exc
    if header.first_seq < 1 or not 1 <= header.count <= MAX_EVENTS_PER_BATCH:
        raise FormatError("使用数据包的序号范围无效", "bad sequence range in batch header")
    if header.prev_hash and (len(header.prev_hash) != 64 or header.first_seq == 1):
        raise FormatError("使用数据包的链接哈希无效", "bad previous-batch hash in header")
    return header, raw, 6 + hlen


def _narrowest(values: list[int], signed: bool) -> array.array:
    lo, hi = (min(values), max(values)) if values else (0, 0)
    for code, size in (_SIGNED if signed else _UNSIGNED):
        bits = size * 8
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if low <= lo and hi <= high:
            return array.array(code, values)
    raise FormatError("使用记录的数值超出范围", "value out of range in batch column")
