"""Benchmark: importing a content pack from a stick folder, hashes verified, vs ``cp -r``.

Makes a pack of 50 x 10 MiB random files (500 MiB; ``--files``/``--mib`` to change)
in a temporary folder on the same disk, then, on fresh targets each time and in
alternating order, times:

* ``cp -r`` of the pack folder (no hash check, no fsync: the floor), and
* ``provisioning.verified_copy.import_verified`` into a ``BlobStore`` (each file
  read once, sha256 checked, written, made durable by ``syncfs``, renamed into
  place, the names made durable by a second ``syncfs``).

Caches: before each timed step ``os.sync()`` runs (neither pays for the other's
dirty pages) and the pack's files are dropped from the page cache with
``posix_fadvise(DONTNEED)``: only our own files, so another benchmark running on
the machine keeps its cache; a stick's files are never cached when a technician
plugs it in, so both sides read from the disk. How much of the pack was still
cached before each cold step is measured (``fincore``) and printed. As root,
``--drop-caches`` also writes 3 to ``/proc/sys/vm/drop_caches`` before each step
(global: it empties every process's cache). ``cp`` is timed without a final sync.

For context (not in the result) each run also times the I/O floor of any durable
copy on this machine: reading the pack cold (``cat``) plus writing as many bytes
with ``O_DIRECT`` and ``fsync``, one after the other. On a machine where the pack
and the store share one disk, ``cp -r`` pays only the read, so ``cp / floor`` is
the highest ratio any durable import can reach there. One extra pair with a hot
cache is printed for information.

Prints a table and, last, ``usb_import_ratio_vs_cp=<float>`` (median cold cp time /
median cold import time; 1.0 means as fast as cp; goal >= 0.8).
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub_sync.core.blobstore import BlobStore  # noqa: E402
from provisioning.verified_copy import Wanted, import_verified  # noqa: E402

MIB = 1024 * 1024


def make_pack(folder: Path, files: int, mib: int) -> list[Wanted]:
    folder.mkdir(parents=True)
    wanted = []
    seed = os.urandom(MIB)
    for i in range(files):
        digest = hashlib.sha256()
        path = folder / f"file-{i:03d}.bin"
        with open(path, "wb") as f:
            for j in range(mib):
                # distinct blocks without paying for urandom of every byte
                block = hashlib.sha256(f"{i}-{j}".encode()).digest() * 32 + seed[: MIB - 1024]
                f.write(block)
                digest.update(block)
        wanted.append(Wanted(path, digest.hexdigest(), mib * MIB))
    return wanted


def evict(wanted: list[Wanted], drop_all: bool = False) -> int:
    """Write back dirty pages, drop the pack's files from the page cache; bytes of
    the pack still cached afterwards (-1 when ``fincore`` is missing)."""
    os.sync()
    if drop_all:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    for item in wanted:
        fd = os.open(item.source, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return cached_bytes(wanted)


def cached_bytes(wanted: list[Wanted]) -> int:
    """Bytes of the pack's files in the page cache (util-linux ``fincore``), or -1."""
    if shutil.which("fincore") is None:
        return -1
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES",
                          *[str(i.source) for i in wanted]], check=True, capture_output=True, text=True).stdout
    return sum(int(line) for line in out.split())


def time_floor(wanted: list[Wanted], target: Path, drop_all: bool) -> float:
    """Cold read of the pack, then as many bytes (in whole 4 MiB blocks) written O_DIRECT and fsynced."""
    evict(wanted, drop_all)
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", 'cat -- "$@" > /dev/null', "cat", *[str(i.source) for i in wanted]], check=True)
    read_s = time.perf_counter() - t0
    block = mmap.mmap(-1, 4 * MIB)  # page-aligned, as O_DIRECT needs
    block.write(os.urandom(4 * MIB))
    total = sum(i.size for i in wanted)
    target.mkdir()
    os.sync()
    t0 = time.perf_counter()
    fd = os.open(target / "floor", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    try:
        for offset in range(0, total, 4 * MIB):
            os.pwrite(fd, block, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
        block.close()
    return read_s + time.perf_counter() - t0


def time_cp(pack: Path, target: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(pack), str(target)], check=True)
    return time.perf_counter() - t0


def time_cp_sync(pack: Path, target: Path) -> float:
    """``cp -r`` then ``sync``: the same copy made durable, as the import is (context only)."""
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(pack), str(target)], check=True)
    os.sync()
    return time.perf_counter() - t0


def time_import(wanted: list[Wanted], target: Path) -> float:
    t0 = time.perf_counter()
    store = BlobStore(target, reserve_bytes=0)
    import_verified(store, wanted)
    dt = time.perf_counter() - t0
    assert sum(1 for _ in store) == len(wanted)
    return dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--mib", type=int, default=10, help="size of each file in MiB")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to make the temporary folders (default: system temp)")
    parser.add_argument("--drop-caches", action="store_true",
                        help="as root, also empty the whole page cache before each step (disturbs other processes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="usb-bench-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        wanted = make_pack(tmp / "pack", args.files, args.mib)
        total_mib = args.files * args.mib
        cp_times, imp_times, sync_times, floor_times, cached = [], [], [], [], []
        print(f"pack: {args.files} files, {total_mib} MiB, in {tmp}; load average {os.getloadavg()[0]:.2f}; "
              f"caches: pack evicted with fadvise{' + drop_caches' if args.drop_caches else ''} before each step")
        print(f"{'run':>3} {'order':12} {'cp -r (s)':>10} {'import (s)':>11} {'import MiB/s':>13} "
              f"{'cp -r+sync (s)':>15} {'I/O floor (s)':>14} {'cached before (MiB)':>20}")
        for run in range(args.runs):
            steps = [("cp", time_cp), ("import", time_import)]
            if run % 2:
                steps.reverse()
            result = {}
            run_cached = []
            for name, fn in steps:
                target = tmp / f"{name}-{run}"
                run_cached.append(evict(wanted, args.drop_caches))
                result[name] = fn(tmp / "pack", target) if name == "cp" else fn(wanted, target)
                shutil.rmtree(target)
            run_cached.append(evict(wanted, args.drop_caches))
            synced = time_cp_sync(tmp / "pack", tmp / f"cp-sync-{run}")
            shutil.rmtree(tmp / f"cp-sync-{run}")
            floor = time_floor(wanted, tmp / f"floor-{run}", args.drop_caches)
            shutil.rmtree(tmp / f"floor-{run}")
            cp_times.append(result["cp"])
            imp_times.append(result["import"])
            sync_times.append(synced)
            floor_times.append(floor)
            cached.extend(run_cached)
            order = "cp,import" if run % 2 == 0 else "import,cp"
            shown = "/".join("?" if c < 0 else f"{c / MIB:.1f}" for c in run_cached)
            print(f"{run + 1:>3} {order:12} {result['cp']:>10.3f} {result['import']:>11.3f} "
                  f"{total_mib / result['import']:>13.0f} {synced:>15.3f} {floor:>14.3f} {shown:>20}")
        os.sync()
        hot_cp = time_cp(tmp / "pack", tmp / "hot-cp")
        os.sync()
        hot_imp = time_import(wanted, tmp / "hot-import")
        print(f"hot  page cache (info only): cp -r {hot_cp:.3f}s, import {hot_imp:.3f}s, ratio {hot_cp / hot_imp:.3f}")
        cp_med, imp_med = statistics.median(cp_times), statistics.median(imp_times)
        sync_med, floor_med = statistics.median(sync_times), statistics.median(floor_times)
        print(f"cold median: cp -r {cp_med:.3f}s, import (sha256 checked, durable) {imp_med:.3f}s, "
              f"cp -r + sync {sync_med:.3f}s (import vs durable cp: {sync_med / imp_med:.3f}), "
              f"I/O floor {floor_med:.3f}s (import vs floor: {floor_med / imp_med:.3f}; "
              f"highest ratio a durable import can reach here: cp / floor = {cp_med / floor_med:.3f})")
        print(f"pack bytes in the page cache before cold steps: max {max(cached) / MIB:.1f} MiB"
              if min(cached) >= 0 else "pack bytes in the page cache before cold steps: unknown (no fincore)")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        print(f"usb_import_ratio_vs_cp={cp_med / imp_med:.3f}")


if __name__ == "__main__":
    main()
