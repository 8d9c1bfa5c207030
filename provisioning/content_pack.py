"""Content packs: the hub's TUF repository for one school, carried on a stick.

A pack is the same signed artefacts the network sync uses, in a folder::

    <school>/content/metadata/   root.json, N.root.json, timestamp.json, N.snapshot.json,
                                 N.targets.json, N.<channel>.json, N.<channel>.bin-<hex>.json
    <school>/content/targets/<sha256>   the school's index and every file it lists
    <school>/content/COMPLETE.json      written last (stick.write_marker)

On the device the pack is verified with the very same python-tuf ngclient path as
the network (``hub_sync.client.sync_client.SyncClient.plan``) through a fetcher that reads
the folder, so bad signatures, unknown keys, rollback and mix-and-match are refused
by TUF. Expiry is judged against the latest time the hub proved (the pack's own
signed time, or anything later the device has seen), not the wall clock: a pack
on a stick is days or weeks old by design, and the board may have no clock; an
older pack than the device already holds is still refused by its versions.
Files are then copied hash-checked (``verified_copy``) into the store.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata
from tuf.ngclient.fetcher import FetcherInterface

from hub_sync.core.blobstore import is_sha256
from hub_sync.core.const import MIB
from hub_sync.formats.tuf_repo import index_path, signed_at

from provisioning import stick
from provisioning.errors import IncompleteError, UnsafePathError
from provisioning.verified_copy import Wanted

log = logging.getLogger(__name__)

PACK_DIR = "content"
PACK_BASE_URL = "usb-pack://stick"
CHUNK_BYTES = 1 * MIB


# -- on the hub: writing a pack ------------------------------------------------
@dataclass
class PackReport:
    files: int = 0
    bytes_copied: int = 0
    bytes_total: int = 0
    snapshot_version: int = 0


def pack_contents(hub, school_code: str) -> tuple[list[Path], dict[str, int]]:
    """(metadata files, {sha256: size} of target files) of the school's pack,
    after re-signing a fresh moment of the repository."""
    from hub_sync.hub.publisher import publish, repo_for

    state = publish(hub, changed=set())  # fresh timestamp/snapshot: a stick travels for days
    repo = repo_for(hub)
    md_dir = repo.metadata_dir
    meta = [md_dir / "root.json", md_dir / "timestamp.json", md_dir / f"{state.snapshot_version}.snapshot.json"]
    meta += sorted(md_dir.glob("*.root.json"))
    meta += repo.moment_files()  # targets, every channel role and every hash bin the snapshot lists
    targets = Metadata.from_bytes((md_dir / f"{state.targets_version}.targets.json").read_bytes()).signed.targets
    index_info = targets.get(index_path(school_code))
    blobs: dict[str, int] = {}
    if index_info is not None:
        index_sha = index_info.hashes["sha256"]
        blobs[index_sha] = index_info.length
        index = json.loads(hub.store.path_for(index_sha).read_bytes())
        for channel in index.get("channels", []):
            for target in repo.channel_targets(str(channel.get("id", ""))).values():
                if is_sha256(target.hashes.get("sha256", "")):
                    blobs[target.hashes["sha256"]] = target.length
    return meta, blobs


def write_pack(hub, school_code: str, school_folder: Path, progress: Callable[[int, int], None] | None = None) -> PackReport:
    """Write (or bring up to date) the school's content pack in ``school_folder``.

    Space is checked before anything is written; files already on the stick
    (from an earlier, maybe interrupted, run) are kept; the marker goes last.
    """
    meta, blobs = pack_contents(hub, school_code)
    pack = school_folder / PACK_DIR
    present = {p.name: p.stat().st_size for p in (pack / "targets").iterdir()} if (pack / "targets").is_dir() else {}
    to_copy = {sha: size for sha, size in blobs.items() if present.get(sha) != size}
    stale = {name: size for name, size in present.items() if name not in blobs}
    meta_bytes = sum(p.stat().st_size for p in meta)
    old_meta = sum(p.stat().st_size for p in (pack / "metadata").iterdir()) if (pack / "metadata").is_dir() else 0
    needed = sum(to_copy.values()) + meta_bytes + 64 * 1024 - sum(stale.values()) - old_meta
    probe = school_folder
    while not probe.is_dir() and probe != probe.parent:
        probe = probe.parent
    stick.check_room(probe, max(needed, 0), f"学校 {school_code} 的资源包 content pack of {school_code}")
    school_folder.mkdir(parents=True, exist_ok=True)
    report = PackReport(bytes_total=sum(to_copy.values()))
    (pack / stick.MARKER).unlink(missing_ok=True)  # from here on the pack is incomplete until the end
    for name in stale:
        (pack / "targets" / name).unlink(missing_ok=True)
    stick.remove_tree(pack / "metadata")
    entries = []
    for path in meta:
        sha, size = stick.atomic_copy(path, pack / "metadata" / path.name)
        entries.append({"path": f"metadata/{path.name}", "size": size, "sha256": sha})
    for sha, size in sorted(blobs.items()):
        if sha in to_copy:
            stick.atomic_copy(hub.store.path_for(sha), pack / "targets" / sha)
            report.bytes_copied += size
            if progress:
                progress(report.bytes_copied, report.bytes_total)
        entries.append({"path": f"targets/{sha}", "size": size, "sha256": sha})
    ts = Metadata.from_bytes((pack / "metadata" / "timestamp.json").read_bytes())
    when = signed_at(ts)
    report.snapshot_version = ts.signed.snapshot_meta.version
    report.files = len(blobs)
    stick.write_marker(pack, entries, kind="content-pack", school_code=school_code,
                       snapshot_version=report.snapshot_version, signed_at=when.isoformat() if when else "")
    return report


# -- on the device: reading a pack --------------------------------------------------
class FolderFetcher(FetcherInterface):
    """ngclient's fetcher over a pack folder: ``<base>/tuf/metadata/<name>`` and
    ``<base>/tuf/targets/.../<sha256>.<name>`` map to checked names in the pack."""

    def __init__(self, pack: Path, base_url: str = PACK_BASE_URL) -> None:
        self.pack = Path(pack)
        self.base = base_url.rstrip("/")

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = self._path(url)
        if path is None or not path.is_file():
            raise tuf_errors.DownloadHTTPError(f"{url}: not in the pack", 404)
        return self._chunks(path)

    def _path(self, url: str) -> Path | None:
        meta, targets = f"{self.base}/tuf/metadata/", f"{self.base}/tuf/targets/"
        try:
            if url.startswith(meta):
                return stick.safe_join(self.pack / "metadata", stick.check_name(url[len(meta):]))
            if url.startswith(targets):
                sha = url.rsplit("/", 1)[-1].split(".", 1)[0]
                return self.pack / "targets" / sha if is_sha256(sha) else None
        except UnsafePathError:
            return None
        return None

    @staticmethod
    def _chunks(path: Path) -> Iterator[bytes]:
        with open(path, "rb") as f:
            while block := f.read(CHUNK_BYTES):
                yield block

    def close(self) -> None:
        """Nothing to close (the same interface as the network fetcher)."""


class PackClock:
    """The reference time for a pack: the latest time the hub proved, counting the
    pack's own signed time (see the module docstring), recorded like the real clock."""

    def __init__(self, clock, pack_signed_at: datetime | None) -> None:
        self.clock = clock
        self.pack_signed_at = pack_signed_at

    def now(self, system: datetime | None = None) -> datetime:
        times = [t for t in (self.clock.proven(), self.pack_signed_at) if t is not None]
        return max(times) if times else self.clock.now(system)

    def proven(self) -> datetime | None:
        return self.clock.proven()

    def prove(self, moment: datetime) -> None:
        self.clock.prove(moment)


def pack_folder(school_folder: Path) -> Path:
    return school_folder / PACK_DIR


def read_pack_marker(school_folder: Path) -> dict:
    """The marker of a complete pack, or IncompleteError."""
    return stick.read_marker(pack_folder(school_folder), "资源包 content pack")


def pack_signed_at(pack: Path) -> datetime | None:
    """The (not yet verified) signed time of a pack's timestamp, to pick the reference time."""
    try:
        return signed_at(Metadata.from_bytes((pack / "metadata" / "timestamp.json").read_bytes()))
    except (OSError, ValueError) as exc:
        raise IncompleteError("资源包缺少时间戳元数据", f"the content pack has no readable timestamp metadata: {exc}") from exc


def plan_from_pack(client, pack: Path):
    """Verify the pack with the network sync's ngclient path and return its plan
    (``hub_sync.client.sync_client.Plan``) and the files to copy.

    ``client`` is a ``SyncClient`` for this appliance; its fetcher and clock are
    swapped for the pack's for this one call.
    """
    client.hub_url = PACK_BASE_URL
    client.clock = PackClock(client.clock, pack_signed_at(pack))
    client.fetcher_factory = lambda: FolderFetcher(pack)
    plan = client.plan()
    wanted = [Wanted(pack / "targets" / sha, sha, info.length) for sha, info in plan.targets.items()]
    for item in wanted:
        if not item.source.is_file():
            raise IncompleteError(f"资源包缺少文件 {item.sha256[:12]}…，请在县平台重新写入U盘",
                                  f"the content pack lacks file {item.sha256[:12]}…; write the stick again at the hub")
    return plan, wanted


def pack_bytes(pack: Path) -> int:
    """Bytes of target files in a pack (for plans and progress)."""
    targets = pack / "targets"
    return sum(os.path.getsize(p) for p in targets.iterdir()) if targets.is_dir() else 0
