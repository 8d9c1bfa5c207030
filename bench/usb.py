"""Benchmark: importing a content pack from a stick folder, hashes verified, vs ``cp -r``.

Makes a pack of 50 x 10 MiB random files (500 MiB; ``--files``/``--mib`` to change)
in a temporary folder on the same disk, then, on fresh targets each time and in
alternating order, times:

* ``cp -r`` of the pack folder (no hash check, no fsync: the floor), and
* ``provisioning.verified_copy.import_verified`` into a ``BlobStore`` (each file
  read once, sha256 checked, fsynced, renamed into place).

Before each timed step ``os.sync()`` runs (neither pays for the other's dirty
pages) and the pack's files are dropped from the page cache with
``posix_fadvise(DONTNEED)`` (only our own files): a stick's files are never in
the cache when a technician plugs it in, so both copies read from the disk. ``cp``
is timed without a final sync (a floor the import, which fsyncs, must approach).
One extra pair with a hot cache is printed for information (there cp copies page
cache to page cache in the kernel and the import's sha256 and fsync dominate).
Prints a table and, last, ``usb_import_ratio_vs_cp=<float>`` (median cold cp time /
median cold import time; 1.0 means as fast as cp; goal >= 0.8).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub_sync.blobstore import BlobStore  # noqa: E402
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


def evict(wanted: list[Wanted]) -> None:
    """Write back dirty pages, then drop the pack's files from the page cache."""
    os.sync()
    for item in wanted:
        fd = os.open(item.source, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


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
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to make the temporary folders (default: system temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="usb-bench-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        wanted = make_pack(tmp / "pack", args.files, args.mib)
        total_mib = args.files * args.mib
        cp_times, imp_times, sync_times = [], [], []
        print(f"pack: {args.files} files, {total_mib} MiB, in {tmp}")
        print(f"{'run':>3} {'order':12} {'cp -r (s)':>10} {'import (s)':>11} {'import MiB/s':>13} {'cp -r+sync (s)':>15}")
        for run in range(args.runs):
            steps = [("cp", time_cp), ("import", time_import)]
            if run % 2:
                steps.reverse()
            result = {}
            for name, fn in steps:
                target = tmp / f"{name}-{run}"
                evict(wanted)
                result[name] = fn(tmp / "pack", target) if name == "cp" else fn(wanted, target)
                shutil.rmtree(target)
            evict(wanted)
            synced = time_cp_sync(tmp / "pack", tmp / f"cp-sync-{run}")
            shutil.rmtree(tmp / f"cp-sync-{run}")
            cp_times.append(result["cp"])
            imp_times.append(result["import"])
            sync_times.append(synced)
            order = "cp,import" if run % 2 == 0 else "import,cp"
            print(f"{run + 1:>3} {order:12} {result['cp']:>10.3f} {result['import']:>11.3f} "
                  f"{total_mib / result['import']:>13.0f} {synced:>15.3f}")
        os.sync()
        hot_cp = time_cp(tmp / "pack", tmp / "hot-cp")
        os.sync()
        hot_imp = time_import(wanted, tmp / "hot-import")
        print(f"hot  page cache (info only): cp -r {hot_cp:.3f}s, import {hot_imp:.3f}s, ratio {hot_cp / hot_imp:.3f}")
        cp_med, imp_med = statistics.median(cp_times), statistics.median(imp_times)
        print(f"cold median: cp -r {cp_med:.3f}s, import (sha256 checked, fsynced) {imp_med:.3f}s, "
              f"cp -r + sync {statistics.median(sync_times):.3f}s (import vs durable cp: "
              f"{statistics.median(sync_times) / imp_med:.3f})")
        print(f"usb_import_ratio_vs_cp={cp_med / imp_med:.3f}")


if __name__ == "__main__":
    main()
