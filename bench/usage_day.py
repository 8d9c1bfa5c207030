"""A synthetic day of usage, made ahead and sent: the province benchmark's load (``bench/province.py``).

``make_day`` writes signed, hash-chained ``usage-batch`` envelopes (the real format) of
synthetic devices into one shard file per sender connection: a few day templates are
encoded once and each batch is a template's body under the device's own header, signed with
its own Ed25519 key, by two processes. ``send_day`` posts every shard at once (two processes,
a keep-alive connection per shard, each device's batches in order) and checks every answer.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import multiprocessing.pool
import struct
import time
from pathlib import Path

from hub_sync.formats.envelope import seal
from hub_sync.formats.usage_batch import BATCH_CONTENT_TYPE, MAGIC, UsageEvent, batch_hash, encode_batch

TEMPLATES = 8
DAY_T0_MS = 1_788_739_200_000  # 2026-09-07 08:00 county time
VERBS = ("viewed", "progressed", "progressed", "completed", "answered")


def day_template(seed: int, n: int) -> list[UsageEvent]:
    """``n`` events of one school's day (08:00-17:00 from t0): up to 300 pupils and 12 teachers on 60 resources."""
    import random

    rng = random.Random(seed)
    pupils, lessons = rng.randint(80, 300), rng.sample(range(3000), 60)
    out = []
    for i in range(n):
        ts = i * 9 * 3600 / n + rng.random()
        r = rng.random()
        if r < 0.01:
            out.append(UsageEvent(i + 1, ts, f"person:{9000 + rng.randint(0, 11)}", "assigned", f"assignment:{i}",
                                  {"resource_id": f"res-{rng.choice(lessons):05d}"}))
        else:
            verb = rng.choice(VERBS)
            data = {"item": f"q{rng.randint(1, 9)}", "correct": rng.random() < 0.7} if verb == "answered" else {}
            out.append(UsageEvent(i + 1, ts, f"person:{rng.randint(1, pupils)}", verb,
                                  f"resource:res-{rng.choice(lessons):05d}", data))
    return out


def encoded_templates(batch_events: int) -> list[tuple[bytes, dict]]:
    """(zlib body, header) of each template batch, encoded once."""
    out = []
    for seed in range(TEMPLATES):
        payload = encode_batch(day_template(seed, batch_events), "t", "t")
        (hlen,) = struct.unpack(">H", payload[4:6])
        out.append((payload[6 + hlen:], json.loads(payload[6:6 + hlen])))
    return out


def device_ids(devices: int) -> list[tuple[str, str]]:
    """(device, school) of each synthetic device: 4 per central school."""
    return [(f"prov-{i:05d}", f"45{i // 4:06d}{i % 4:02d}") for i in range(devices)]


def make_shard(job: tuple) -> tuple[list[tuple[str, str, dict]], int, int]:
    """Keys for the shard's devices and every device's batches, signed, into ``path``:
    records of ``u32 events | u32 length | envelope``, each device's batches in order.
    Returns ([(device, school, public key dict)], envelopes, events)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.signer import CryptoSigner, SSlibKey

    from hub_sync.core.keys import public_key_dict

    path, devices, per_device, batch_events = job
    templates = encoded_templates(batch_events)
    keys, envelopes, events = [], 0, 0
    with open(path, "wb") as out:
        for n, (device, school) in enumerate(devices):
            private = Ed25519PrivateKey.generate()
            signer = CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))
            keys.append((device, school, public_key_dict(signer)))
            first, prev, left = 1, "", per_device
            while left > 0:
                body, header = templates[(n + first) % TEMPLATES]
                count = min(left, header["last"])
                if count < header["last"]:  # the day's last, shorter batch: encoded for real
                    payload = encode_batch(day_template(n, count), device, school, prev)
                    payload = _rehead(payload, first, first + count - 1, prev)
                else:
                    h = dict(header, device=device, school=school, first=first, last=first + count - 1, prev=prev,
                             t0=DAY_T0_MS + (first - 1) * 10)
                    raw = json.dumps(h, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
                    payload = MAGIC + struct.pack(">H", len(raw)) + raw + body
                env = seal("usage-batch", payload, signer)
                out.write(struct.pack("<II", count, len(env)) + env)
                first, prev, left = first + count, batch_hash(payload), left - count
                envelopes, events = envelopes + 1, events + count
    return keys, envelopes, events


def _rehead(payload: bytes, first: int, last: int, prev: str) -> bytes:
    (hlen,) = struct.unpack(">H", payload[4:6])
    h = dict(json.loads(payload[6:6 + hlen]), first=first, last=last, prev=prev, t0=DAY_T0_MS + (first - 1) * 10)
    raw = json.dumps(h, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return MAGIC + struct.pack(">H", len(raw)) + raw + payload[6 + hlen:]


def make_day(folder: Path, devices: int, events: int, batch_events: int, shards: int):
    """The day's shard files (one per sender connection), made by two processes."""
    per_device = -(-events // devices)
    ids = device_ids(devices)
    jobs = [(folder / f"shard-{s:03d}.bin", ids[s::shards], per_device, batch_events) for s in range(shards)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        made = pool.map(make_shard, jobs)
    keys = [k for m in made for k in m[0]]
    return keys, [j[0] for j in jobs], sum(m[1] for m in made), sum(m[2] for m in made)


# -- sending --------------------------------------------------------------------------
def send_shard(host: str, port: int, path: Path) -> tuple[int, int, list[str]]:
    """Post a shard's envelopes in order on one keep-alive connection; (batches, events, errors)."""
    conn = http.client.HTTPConnection(host, port, timeout=300)
    batches = events = 0
    errors: list[str] = []
    headers = {"Content-Type": BATCH_CONTENT_TYPE}
    with open(path, "rb") as f:
        while head := f.read(8):
            count, size = struct.unpack("<II", head)
            env = f.read(size)
            for attempt in range(20):
                try:
                    conn.request("POST", "/api/v1/hub/usage", body=env, headers=headers)
                    answer = conn.getresponse()
                    body = answer.read()
                except (OSError, http.client.HTTPException) as exc:  # a closed keep-alive: again, once more
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=300)
                    if attempt == 19:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if answer.status == 503:  # the front or the database busy: as a device does, later
                    time.sleep(0.5)
                    continue
                if answer.status != 200 or b"usage-ack" not in body:
                    errors.append(f"HTTP {answer.status} {body[:200]!r}")
                break
            batches, events = batches + 1, events + count
    conn.close()
    return batches, events, errors


def _send_many(job: tuple) -> tuple[int, int, list[str]]:
    host, port, paths = job
    with multiprocessing.pool.ThreadPool(len(paths)) as threads:
        done = threads.starmap(send_shard, [(host, port, p) for p in paths])
    return sum(d[0] for d in done), sum(d[1] for d in done), [e for d in done for e in d[2]]


def send_day(host: str, port: int, shard_files: list[Path]) -> tuple[int, int, list[str], float]:
    """Every shard at once (two sender processes, a thread per shard); (batches, events, errors, seconds)."""
    halves = [(host, port, shard_files[i::2]) for i in range(2)]
    started = time.monotonic()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        done = pool.map(_send_many, halves)
    return sum(d[0] for d in done), sum(d[1] for d in done), [e for d in done for e in d[2]], time.monotonic() - started
