"""Province channels mirrored into a county hub as TUF delegations.

A province is a hub like any other; its channel ``prov-x`` is a role its targets
metadata delegates to its own online key. A county mirrors it so (``H/mirrors/<CH>/``):

    province-root.json   the province's root, given out of band (``hub mirror add``)
    metadata/            python-tuf ngclient's trusted copy of the province's metadata
    verified.json        the last sync that verified everything: the province's
                         delegation of CH (keys, threshold) and CH's signed role files
                         (the channel's and its hash bins'), byte for byte, base64

A sync verifies the province's timestamp, snapshot, targets and the channel's roles
with ngclient, downloads every target file into the county's store (length and
sha256 checked), and only then replaces ``verified.json``. The county's ``publish``
delegates CH to the province's key and copies those files into its own repository
at the province's versions (``TufRepo``'s mirrored roles): the county never signs
them, and an appliance checks them against the province's key through the county's
targets. A refused sync changes nothing: the county keeps publishing the last
verified copy (until the province's own signatures on it expire).
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Targets, TargetFile
from tuf.ngclient import Updater

from hub_sync.client.http_transport import http_client, http_fetch
from hub_sync.client.sync_client import translate
from hub_sync.client.tuf_fetcher import HttpxFetcher
from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import FormatError, Problem, SyncError
from hub_sync.hub.publisher import publish as publish_hub
from hub_sync.hub.channel_mirrors import VERIFIED_FILE, ChannelMirrors, mirror_dir

log = logging.getLogger(__name__)

ROOT_FILE = "province-root.json"
SYNC_INTERVAL_MIN = 30  # ``hub serve``'s job: a province publishes a few times a day at most
FIRST_PASS_S = 60
STOP_BUDGET_S = 3.0


@dataclass(frozen=True)
class MirrorResult:
    channel: str
    version: int  # the channel role's version now verified
    files: int  # target files the channel lists
    fetched: int  # of those, downloaded this time


def add_mirror(hub, channel: str, url: str, province_root: bytes, title: str = "", mandatory: bool = False):
    """Record a mirror of ``channel`` from the hub at ``url``, trusting ``province_root``
    (the province's root metadata, from the technician's stick) from now on."""
    try:
        root = Metadata[Root].from_bytes(province_root)
        root.verify_delegate(Root.type, root)  # self-signed by its own threshold of root keys
    except Exception as exc:  # any parse or signature failure: not a usable root
        raise FormatError("省级根元数据文件无效（不是签名正确的 root.json），未添加镜像",
                          f"the province root metadata is not a validly signed root.json ({exc}); no mirror added") from exc
    folder = mirror_dir(hub, channel)
    mirror = ChannelMirrors(hub.db).add(channel, url, title, mandatory)
    if folder.exists():
        shutil.rmtree(folder)  # a mirror added again starts from the root given now
    (folder / "metadata").mkdir(parents=True)
    atomic_write(folder / ROOT_FILE, province_root)
    return mirror


def remove_mirror(hub, channel: str) -> None:
    """Stop mirroring ``channel``: gone from the database now, from the repository at the next publish."""
    ChannelMirrors(hub.db).remove(channel)
    shutil.rmtree(mirror_dir(hub, channel), ignore_errors=True)


def sync_mirror(hub, channel: str) -> MirrorResult:
    """Verify the province's metadata for ``channel``, fetch its files, keep the verified
    copy; raises one bilingual ``Problem`` (and records it) when anything is refused."""
    mirrors = ChannelMirrors(hub.db)
    mirror = mirrors.get(channel)
    folder = mirror_dir(hub, channel)
    try:
        with _folder_lock(folder):
            result = _sync(hub, channel, mirror.url, folder)
    except Problem as exc:
        mirrors.failed(channel, exc.en)
        raise
    mirrors.synced(channel, result.version)
    return result


def _sync(hub, channel: str, url: str, folder: Path) -> MirrorResult:
    tuf_dir = folder / "metadata"
    tuf_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = None if (tuf_dir / "root.json").exists() else (folder / ROOT_FILE).read_bytes()
    fetcher = HttpxFetcher()
    try:
        updater = Updater(str(tuf_dir), f"{url}/tuf/metadata/", str(folder / "targets"), f"{url}/tuf/targets/",
                          fetcher=fetcher, bootstrap=bootstrap)
        updater.refresh()
        top = updater._load_targets(Targets.type, Root.type)  # verified by refresh()
        delegated = (top.delegations.roles or {}).get(channel) if top.delegations else None
        if delegated is None:
            raise FormatError(f"省级平台不发布频道 {channel}", f"the province does not publish channel {channel}")
        files, targets = _verified_roles(updater, tuf_dir, channel)
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError, ValueError) as exc:
        refused = translate(exc)
        raise type(refused)(f"省级频道 {channel}：{refused.zh}；县级平台继续发布上次验证过的版本",
                            f"province channel {channel}: {refused.en}; the county keeps publishing the last verified "
                            "version") from exc
    finally:
        fetcher.close()
    fetched = _fetch_files(hub, url, folder, targets)
    keys = {k: top.delegations.keys[k] for k in delegated.keyids if k in top.delegations.keys}
    atomic_write(folder / VERIFIED_FILE, json.dumps({
        "channel": channel, "origin": url, "keyids": list(delegated.keyids), "threshold": delegated.threshold,
        "keys": {k: key.to_dict() for k, key in keys.items()},
        "files": {name: {"version": v, "data": base64.b64encode(data).decode()} for name, (v, data) in files.items()},
    }, sort_keys=True).encode())
    return MirrorResult(channel, files[channel][0], len(targets), fetched)


def _verified_roles(updater: Updater, tuf_dir: Path, channel: str):
    """The channel's role and its bins as ngclient verified them: role name -> (version,
    the exact bytes it kept), and every target, each on a path of the channel."""
    role = updater._load_targets(channel, Targets.type)
    files = {channel: (role.version, _kept(tuf_dir, channel, role))}
    found = dict(role.targets)
    succinct = role.delegations.succinct_roles if role.delegations else None
    for name in succinct.get_roles() if succinct is not None else ():
        bin_role = updater._load_targets(name, channel)
        files[name] = (bin_role.version, _kept(tuf_dir, name, bin_role))
        for path, info in bin_role.targets.items():
            if succinct.get_role_for_target(path) != name:
                raise FormatError(f"省级频道 {channel} 的条目 {path} 不属于签名它的分箱，已拒收",
                                  f"province target {path} is in a bin that is not trusted for it; refused")
            found[path] = info
    for path, info in found.items():
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != channel or parts[2] != info.hashes.get("sha256"):
            raise FormatError(f"省级频道 {channel} 的条目 {path} 无效，已拒收",
                              f"province target {path} is not a file of channel {channel}; refused")
    return files, found


def _kept(tuf_dir: Path, name: str, verified: Targets) -> bytes:
    """The bytes ngclient persisted for role ``name`` (exactly what it downloaded and verified)."""
    data = (tuf_dir / f"{quote(name, '')}.json").read_bytes()
    if Metadata.from_bytes(data).signed != verified:
        raise SyncError(f"镜像元数据 {name} 在校验后被改动", f"mirrored metadata {name} changed after it was verified")
    return data


def _fetch_files(hub, url: str, folder: Path, targets: dict[str, TargetFile]) -> int:
    """Download the target files the county lacks from ``url/content/<sha256>``; each is
    checked against its length and sha256 before it enters the store."""
    missing = {t.hashes["sha256"]: t for t in targets.values() if not hub.store.has(t.hashes["sha256"])}
    if not missing:
        return 0
    hub.store.check_space(sum(t.length for t in missing.values()))
    staging = folder / "incoming"
    staging.mkdir(exist_ok=True)
    with http_client() as client:
        for sha, target in sorted(missing.items()):
            part = staging / sha
            http_fetch(client, url, sha, target.length, part)
            try:
                with part.open("rb") as f:
                    target.verify_length_and_hashes(f)
            except tuf_errors.LengthOrHashMismatchError as exc:
                part.unlink(missing_ok=True)
                raise SyncError(f"省级平台的文件 {sha[:12]}… 长度或校验值不符，已拒收",
                                f"province file {sha[:12]}… does not match its length and sha256; refused") from exc
            hub.store.adopt(part, sha)
            part.unlink(missing_ok=True)
    return len(missing)


def sync_all(hub, publish: bool = True) -> tuple[list[MirrorResult], list[tuple[str, Problem]]]:
    """Sync every mirror (one refusal does not stop the others), then publish once."""

    done, failed = [], []
    for mirror in ChannelMirrors(hub.db).all():
        try:
            done.append(sync_mirror(hub, mirror.channel))
        except Problem as exc:
            log.warning("mirror %s: %s", mirror.channel, exc.en)
            failed.append((mirror.channel, exc))
    if publish:
        publish_hub(hub)
    return done, failed


class _folder_lock:
    """One sync of a mirror at a time (``hub serve``'s job and a technician's ``hub mirror sync``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.file = open(self.folder / ".lock", "a+")
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        self.file.close()


def mirror_job(hub) -> Callable[[], None]:
    """A background job of ``hub serve``: every mirror synced ``FIRST_PASS_S`` after the start,
    then every ``SYNC_INTERVAL_MIN`` minutes, and the county republished; returns its stop."""
    from apscheduler.schedulers.background import BackgroundScheduler

    def tick() -> None:
        try:
            if ChannelMirrors(hub.db).all():
                sync_all(hub)
        except Exception:  # a background job must never die: log and try at the next interval
            log.exception("mirror sync failed")

    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(tick, "interval", minutes=SYNC_INTERVAL_MIN, id="channel-mirrors", max_instances=1,
                      coalesce=True, next_run_time=datetime.now() + timedelta(seconds=FIRST_PASS_S))
    scheduler.start()

    def stop_job() -> None:
        stopper = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, name="stop-mirror-sync",
                                   daemon=True)
        stopper.start()
        stopper.join(STOP_BUDGET_S)

    return stop_job
