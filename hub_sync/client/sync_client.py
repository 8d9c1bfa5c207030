"""The appliance's side of "down", on python-tuf's ngclient.

``SyncClient.plan()`` refreshes the TUF metadata against the pinned root (ngclient
refuses bad signatures, unknown keys, rollback, expired metadata and
mix-and-match), reads this school's index (kept between syncs, fetched again only
when it changed), reads the targets of its channels (from their hash bins, each
loaded again only when the snapshot names a new version) and returns what the
school should hold. ``fetch()`` gets only the missing files (rsync, HTTP Range as fallback) and
checks each one's length and sha256 against its TUF target before it enters the
store. Switching the catalogue is the caller's job (``edge_agent.sync.content_sync``).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile, Targets
from tuf.ngclient import Updater

from hub_sync.core.blobstore import BlobStore, is_sha256
from hub_sync.core.errors import CorruptBlobError, FormatError, LinkError, ReplayError, SignatureError, SyncError
from hub_sync.client.http_transport import http_client, http_fetch
from hub_sync.client.rsync_transport import PARTIAL_DIR, RsyncUnreachable, rsync_fetch, store_path
from hub_sync.core.trusted_clock import TrustedClock
from hub_sync.client.tuf_fetcher import HttpxFetcher
from hub_sync.formats.tuf_repo import index_path, signed_at

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 8 * 1024 ** 3
INDEX_FILE = "school-index.json"  # the verified index of the last sync, kept so an unchanged one is not fetched again
ATOMIC_LEFTOVER_AGE_S = 60.0  # an atomic write older than this was cut off


@dataclass
class RemoteResource:
    id: str
    channel: str
    meta: dict
    files: list[dict] = field(default_factory=list)  # path, sha256, size, mime


@dataclass
class Plan:
    """What one verified snapshot says this school should hold."""

    snapshot_version: int
    channel_versions: dict[str, int]
    channels: list[dict]
    resources: list[RemoteResource]
    targets: dict[str, TargetFile]  # sha256 -> target (one per distinct file)

    def total_bytes(self) -> int:
        return sum(t.length for t in self.targets.values())


@dataclass
class FetchReport:
    files: int = 0
    bytes_received: int = 0
    transport: str = ""


def safe_relative_path(path: str) -> bool:
    """True for a plain relative path that stays inside its folder."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path or path.startswith("/"):
        return False
    norm = posixpath.normpath(path)
    return norm == path and not norm.startswith("..") and all(p not in ("", ".", "..") for p in path.split("/"))


def translate(exc: Exception) -> SyncError:
    """Turn a python-tuf refusal into one clear, bilingual reason."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, tuf_errors.ExpiredMetadataError):
        return ReplayError("平台元数据已过期（可能被冻结或本机时钟超前），已拒收", f"hub metadata has expired (freeze attack or clock ahead); refused: {text}")
    if isinstance(exc, tuf_errors.BadVersionNumberError):
        return ReplayError("平台元数据版本不对（回滚或混用），已拒收", f"hub metadata has a wrong version (rollback or mix-and-match); refused: {text}")
    if isinstance(exc, tuf_errors.UnsignedMetadataError):
        return SignatureError("平台元数据签名无效或来自未知密钥，已拒收", f"hub metadata has a bad signature or an unknown key; refused: {text}")
    if isinstance(exc, tuf_errors.LengthOrHashMismatchError):
        return CorruptBlobError("文件长度或校验值不符，已拒收", f"length or hash mismatch; refused: {text}")
    if isinstance(exc, tuf_errors.DownloadError):
        return LinkError("无法从县级平台下载，稍后重试", f"cannot download from the hub; will retry: {text}")
    return FormatError("平台返回的元数据无效，已拒收", f"hub metadata is invalid; refused: {text}")


class SyncClient:
    """Verified metadata and verified files from one hub, for one school."""

    # how metadata is fetched; a USB content pack swaps in a folder reader (provisioning.content_pack)
    fetcher_factory = HttpxFetcher

    def __init__(self, state_dir: str | Path, hub_url: str, rsync_url: str, school_code: str, pinned_root: bytes,
                 store: BlobStore, bwlimit_kbps: int = 0, timeout_s: int | None = None,
                 clock: TrustedClock | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.hub_url = hub_url.rstrip("/")
        self.rsync_url = rsync_url
        self.school_code = school_code
        self.pinned_root = pinned_root
        self.store = store
        self.bwlimit_kbps = bwlimit_kbps
        self.timeout_s = timeout_s
        self.metadata_dir = self.state_dir / "tuf"
        self.staging = self.state_dir / "staging"
        # the appliance passes its one trusted clock; a bare client keeps its own next to its state
        self.clock = clock or TrustedClock(self.state_dir / "clock.json")

    # -- metadata -----------------------------------------------------------------
    def remove_tuf_leftovers(self) -> int:
        """Delete the temporary files python-tuf's ngclient writes next to the metadata
        (and the target index) before renaming them into place: a sync killed between
        the two leaves one behind. Syncs run one at a time (the caller's sync lock), so
        none of them is in use; returns how many were removed."""
        removed = 0
        for folder in (self.metadata_dir, self.state_dir / "index"):
            for leftover in folder.glob("tmp*") if folder.is_dir() else ():
                if leftover.is_file():
                    leftover.unlink(missing_ok=True)
                    removed += 1
        # atomic_file's temporary files (".<name>.<random>.tmp") in the sync state, e.g. the
        # trusted clock's; only old ones, as a served appliance may be writing one right now
        for leftover in self.state_dir.glob(".*.tmp") if self.state_dir.is_dir() else ():
            try:
                if time.time() - leftover.stat().st_mtime > ATOMIC_LEFTOVER_AGE_S:
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def plan(self) -> Plan:
        """Refresh and verify the hub's metadata; return this school's plan."""
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.remove_tuf_leftovers()
        fetcher = self.fetcher_factory()
        try:
            updater = self.refreshed_updater(fetcher)
            index = self._read_index(updater)
            snapshot = Metadata.from_bytes((self.metadata_dir / "snapshot.json").read_bytes())
            return self._plan_from(updater, index, snapshot)
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError, ValueError) as exc:
            raise translate(exc) from exc
        finally:
            fetcher.close()

    def refreshed_updater(self, fetcher) -> Updater:
        """An ngclient ``Updater`` whose top-level metadata was just refreshed and
        verified against the pinned root (raises python-tuf's errors; ``plan`` and
        the firmware client translate them)."""
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = None if (self.metadata_dir / "root.json").exists() else self.pinned_root
        updater = Updater(str(self.metadata_dir), f"{self.hub_url}/tuf/metadata/", str(self.state_dir / "index"),
                          f"{self.hub_url}/tuf/targets/", fetcher=fetcher, bootstrap=bootstrap)
        # ngclient checks expiry against a reference time fixed when its trusted set is
        # made; use the trusted clock (never earlier than a time the hub proved).
        updater._trusted_set.reference_time = self.clock.now()
        updater.refresh()
        timestamp = Metadata.from_bytes((self.metadata_dir / "timestamp.json").read_bytes())
        proven = signed_at(timestamp)
        if proven is not None:
            self.clock.prove(proven)
        return updater

    def _read_index(self, updater: Updater) -> dict:
        """This school's index: the verified copy kept from the last sync when its
        length and hashes still match (ngclient's ``find_cached_target``), else fetched."""
        info = updater.get_targetinfo(index_path(self.school_code))
        if info is None:
            raise SyncError(f"县级平台没有学校 {self.school_code} 的资源清单：请先登记设备",
                            f"the hub has no index for school {self.school_code}; enroll the device first")
        kept = self.state_dir / "index" / INDEX_FILE
        kept.parent.mkdir(parents=True, exist_ok=True)
        if updater.find_cached_target(info, str(kept)) is None:
            try:
                updater.download_target(info, str(kept))
            except BaseException:
                kept.unlink(missing_ok=True)
                raise
        index = json.loads(kept.read_bytes())
        if not isinstance(index, dict) or index.get("school_code") != self.school_code \
                or not isinstance(index.get("channels"), list):
            raise FormatError("学校资源清单格式无效，已拒收", "the school index is malformed; refused")
        return index

    def _channel_targets(self, updater: Updater, top: Targets, channel: str) -> dict[str, TargetFile]:
        """Every target of ``channel``: its role's own, or those of all its hash bins
        (``hub_sync.formats.tuf_bins``), each role verified by ngclient against the
        snapshot (version), its delegator (keys) and the clock (expiry). Only a bin
        whose version changed is downloaded; the others are read from the local copy.

        ngclient looks targets up by path and has no public listing, so this walks
        the roles with its loader, ``Updater._load_targets`` (python-tuf 7)."""
        delegated = (top.delegations.roles or {}).get(channel) if top.delegations else None
        if delegated is None:
            raise FormatError(f"清单中的频道 {channel} 未被授权，已拒收", f"index names channel {channel}, which targets does not delegate; refused")
        role = updater._load_targets(channel, Targets.type)
        found = {path: (info, None) for path, info in role.targets.items()}
        succinct = role.delegations.succinct_roles if role.delegations else None
        if succinct is not None:
            for name in succinct.get_roles():
                found.update((path, (info, name)) for path, info in updater._load_targets(name, channel).targets.items())
        for path, (_, holder) in found.items():
            if not delegated.is_delegated_path(path) or (succinct is not None and succinct.get_role_for_target(path) != holder):
                raise FormatError(f"频道 {channel} 的条目 {path} 不属于签名它的角色，已拒收",
                                  f"target {path} is signed by a role that is not trusted for it; refused")
        return {path: info for path, (info, _) in found.items()}

    def _plan_from(self, updater: Updater, index: dict, snapshot: Metadata) -> Plan:
        resources: dict[str, RemoteResource] = {}
        targets: dict[str, TargetFile] = {}
        channel_ids = {c.get("id") for c in index["channels"] if isinstance(c, dict)}
        top = updater._load_targets(Targets.type, Root.type)  # already verified by refresh()
        listed = {}
        for ch in sorted(c for c in channel_ids if isinstance(c, str)):
            listed.update(self._channel_targets(updater, top, ch))
        for path, info in sorted(listed.items()):
            custom = info.custom if isinstance(info.custom, dict) else {}
            sha = info.hashes.get("sha256", "")
            rid, ch, fpath = custom.get("resource_id"), custom.get("channel"), custom.get("path")
            if not is_sha256(sha) or not isinstance(rid, str) or ch not in channel_ids or path != f"{ch}/{rid}/{sha}":
                raise FormatError(f"频道清单中的条目 {path} 无效，已拒收", f"target {path} in the channel manifest is malformed; refused")
            if not safe_relative_path(fpath) or not safe_relative_path(rid):
                raise FormatError(f"频道清单中的路径 {fpath!r} 试图离开资源目录，已拒收",
                                  f"path {fpath!r} in the channel manifest tries to leave its folder; refused")
            if not 0 <= info.length <= MAX_FILE_BYTES:
                raise FormatError(f"文件 {path} 的大小无效", f"target {path} has an invalid length")
            res = resources.setdefault(rid, RemoteResource(rid, ch, {k: v for k, v in custom.items()
                                                                     if k not in ("resource_id", "channel", "path", "mime", "order")}))
            order = custom.get("order") if isinstance(custom.get("order"), int) else len(res.files)
            res.files.append({"path": fpath, "sha256": sha, "size": info.length, "order": order,
                              "mime": str(custom.get("mime") or "application/octet-stream")})
            targets[sha] = info
        for res in resources.values():
            res.files.sort(key=lambda f: f.pop("order"))
        versions = {name[:-5]: m.version for name, m in snapshot.signed.meta.items() if name[:-5] in channel_ids}
        return Plan(snapshot.signed.version, versions, [c for c in index["channels"] if isinstance(c, dict)],
                    sorted(resources.values(), key=lambda r: r.id), targets)

    # -- files ------------------------------------------------------------------------
    def missing(self, plan: Plan) -> list[str]:
        """The files of ``plan`` the store does not hold yet."""
        return sorted(sha for sha in plan.targets if not self.store.has(sha))

    def clean_staging(self, keep: set[str] | None = None) -> None:
        """Remove staged leftovers that no wanted file can resume from."""
        for leftover in self.state_dir.glob(".files-from-*"):
            leftover.unlink(missing_ok=True)
        if not self.staging.exists():
            return
        keep = keep or set()
        for sub in list(self.staging.iterdir()):
            if not sub.is_dir():
                sha = sub.name.split(".", 1)[0]
                if sha not in keep:
                    sub.unlink(missing_ok=True)
                continue
            for f in list(sub.rglob("*")):
                if not f.is_file():
                    continue
                temp = _RSYNC_TEMP.match(f.name)
                if temp and f.parent == sub and (sub.name + temp.group(1)) in keep:
                    _keep_as_partial(f, sub / PARTIAL_DIR / temp.group(1))
                elif (sub.name + f.name) not in keep:
                    f.unlink(missing_ok=True)
            for d in sorted((d for d in sub.rglob("*") if d.is_dir()), reverse=True):
                _rmdir_if_empty(d)
            _rmdir_if_empty(sub)

    def fetch(self, plan: Plan, shas: list[str], progress: Callable[[str], None] | None = None) -> FetchReport:
        """Fetch ``shas`` (rsync, else HTTP Range), verify each, adopt into the store."""
        report = FetchReport()
        if not shas:
            return report
        self.clean_staging(set(shas))
        need = sum(plan.targets[s].length for s in shas)
        self.store.check_space(need)
        verified: list[tuple[Path, str]] = []
        try:
            result = rsync_fetch(self.rsync_url, shas, self.staging, self.bwlimit_kbps,
                                 max_size=max(plan.targets[s].length for s in shas),
                                 **({"timeout_s": self.timeout_s} if self.timeout_s else {}),
                                 progress=(lambda n: progress(f"rsync {n} bytes staged")) if progress else None)
            report.transport, report.bytes_received = "rsync", result.bytes_received
            for sha in shas:
                verified.append(self._verify(plan.targets[sha], self.staging / store_path(sha), "rsync"))
        except RsyncUnreachable as exc:
            log.warning("rsync unreachable, using HTTP: %s", exc.en)
            report.transport = "http"
            with http_client() as client:
                for sha in shas:
                    dest = self.staging / f"{sha}.http-part"
                    self.staging.mkdir(parents=True, exist_ok=True)
                    report.bytes_received += http_fetch(client, self.hub_url, sha, plan.targets[sha].length, dest)
                    verified.append(self._verify(plan.targets[sha], dest, "http"))
                    if progress:
                        progress(f"http {sha[:12]}…")
        finally:
            # what was verified enters the store even when a later file is refused or cut
            self.store.adopt_many(verified)
            for path, _ in verified:
                path.unlink(missing_ok=True)  # left when the blob already existed
        report.files = len(shas)
        self.clean_staging()
        return report

    def _verify(self, target: TargetFile, path: Path, transport: str) -> tuple[Path, str]:
        """Check a staged file against its TUF target (length, sha256); refuse and drop it if it differs."""
        sha = target.hashes["sha256"]
        if not path.is_file():
            raise CorruptBlobError(f"文件 {sha[:12]}… 未收到或超过声明的大小，已拒收",
                                   f"file {sha[:12]}… was not delivered or is larger than declared ({transport}); refused")
        try:
            with path.open("rb") as f:
                target.verify_length_and_hashes(f)
        except tuf_errors.LengthOrHashMismatchError as exc:
            path.unlink(missing_ok=True)
            raise CorruptBlobError(f"文件 {sha[:12]}… 长度或校验值不符，已拒收",
                                   f"file {sha[:12]}… does not match its declared length and sha256; refused") from exc
        return path, sha


# rsync's in-progress file ".<name>.XXXXXX": left behind when rsync itself was SIGKILLed
_RSYNC_TEMP = re.compile(r"^\.([0-9a-f]{62})\.[A-Za-z0-9]{6}$")


def _keep_as_partial(temp: Path, partial: Path) -> None:
    """Make a killed rsync's temp file the partial file the next run resumes from
    (the longer of the two wins; the other is dropped)."""
    partial.parent.mkdir(exist_ok=True)
    if partial.exists() and partial.stat().st_size >= temp.stat().st_size:
        temp.unlink(missing_ok=True)
    else:
        os.replace(temp, partial)


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


__all__ = ["SyncClient", "Plan", "RemoteResource", "FetchReport", "safe_relative_path", "PARTIAL_DIR"]
