"""The hub's side of The Update Framework: a repository built with python-tuf's
metadata API.

Roles::

    root       signed by the root key; lists the keys of every top-level role
    targets    online key; one delegated role per channel (role name = channel id,
               paths ``<channel>/*/*``) and one target per school index
               ``schools/<school_code>.json`` (which channels and targets a school gets)
    <channel>  online key; one target per resource file, ``<channel>/<resource>/<sha256>``,
               with the curriculum metadata in the target's ``custom`` field
    snapshot   online key; the versions of targets and every channel role
    timestamp  online key; the snapshot version, plus ``signed_at`` (a signed time
               the appliances use as a floor for their clock)

Consistent snapshots are on, so metadata is published as ``<version>.<role>.json``
and only ``timestamp.json`` is replaced in place (last, by a rename): a client
always sees one whole moment of the repository, never a mix.

Target files are content addressed: the bytes live in the hub's ``BlobStore``
under their sha256, so the rsync module and the HTTP route serve them by hash.
"""

from __future__ import annotations

import fcntl
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from securesystemslib.signer import Signer
from tuf.api.metadata import (DelegatedRole, Delegations, Metadata, MetaFile, Root, Snapshot, Targets, TargetFile,
                              Timestamp)
from tuf.api.serialization.json import JSONSerializer

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import FormatError, SyncError

# Lifetimes of signed metadata (how long a frozen copy stays acceptable).
ROOT_LIFETIME = timedelta(days=365)
TARGETS_LIFETIME = timedelta(days=30)
CHANNEL_LIFETIME = timedelta(days=30)
SNAPSHOT_LIFETIME = timedelta(days=7)
TIMESTAMP_LIFETIME = timedelta(days=1)
# The hub re-signs the timestamp when less than this is left.
TIMESTAMP_RESIGN_BEFORE = timedelta(hours=12)

SIGNED_AT = "signed_at"  # extra signed field of timestamp metadata: the hub's clock
CHANNEL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RESERVED_ROLES = {"root", "targets", "snapshot", "timestamp", "schools"}
INDEX_PREFIX = "schools/"

_SERIALIZER = JSONSerializer(compact=False)


KEEP_MOMENTS = 3  # published moments whose metadata stays on disk (see TufRepo._prune)


def check_channel_id(channel: str) -> None:
    """Refuse a channel id that cannot be a TUF role name and a path part."""
    if not CHANNEL_ID.match(channel or "") or channel in RESERVED_ROLES:
        raise FormatError(f"频道编号 {channel!r} 无效：只能用小写字母、数字和连字符",
                          f"invalid channel id {channel!r}: use lowercase letters, digits and '-'")


def target_path(channel: str, resource_id: str, sha256: str) -> str:
    """The TUF target path of one resource file."""
    return f"{channel}/{resource_id}/{sha256}"


def index_path(school_code: str) -> str:
    return f"{INDEX_PREFIX}{school_code}.json"


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass(frozen=True)
class RepoState:
    """Versions of the repository as last published."""

    snapshot_version: int
    targets_version: int
    channel_versions: dict[str, int]
    timestamp_expires: datetime


class TufRepo:
    """A TUF repository in ``repo_dir/metadata`` (targets live in a BlobStore)."""

    def __init__(self, repo_dir: str | Path, root_signer: Signer | None, online_signer: Signer) -> None:
        self.repo_dir = Path(repo_dir)
        self.metadata_dir = self.repo_dir / "metadata"
        self.root_signer = root_signer
        self.online_signer = online_signer

    # -- reading ----------------------------------------------------------------
    def exists(self) -> bool:
        return (self.metadata_dir / "timestamp.json").is_file()

    def _load(self, name: str) -> Metadata:
        try:
            return Metadata.from_bytes((self.metadata_dir / name).read_bytes())
        except (OSError, ValueError) as exc:
            raise SyncError(f"仓库元数据 {name} 无法读取", f"repository metadata {name} cannot be read: {exc}") from exc

    def root_bytes(self) -> bytes:
        """The current root metadata (what provisioning pins on a device)."""
        return (self.metadata_dir / "root.json").read_bytes()

    def state(self) -> RepoState:
        ts = self._load("timestamp.json")
        snap = self._load(f"{ts.signed.snapshot_meta.version}.snapshot.json")
        channels = {name[:-5]: meta.version for name, meta in snap.signed.meta.items() if name != "targets.json"}
        return RepoState(snap.signed.version, snap.signed.meta["targets.json"].version, channels, ts.signed.expires)

    def channel_targets(self, channel: str) -> dict[str, TargetFile]:
        """The targets of a channel as last published (empty if never)."""
        versions = self.state().channel_versions if self.exists() else {}
        if channel not in versions:
            return {}
        return self._load(f"{versions[channel]}.{channel}.json").signed.targets

    def index_targets(self) -> dict[str, TargetFile]:
        """The school index targets of the top-level targets role as last published."""
        if not self.exists():
            return {}
        return self._load(f"{self.state().targets_version}.targets.json").signed.targets

    def published_hashes(self) -> set[str]:
        """The sha256 of every target some kept moment lists (what may be served by hash).

        ``_prune`` keeps the metadata of the last ``KEEP_MOMENTS`` moments, so the
        targets roles on disk are exactly those a client may still be fetching for."""
        hashes = set()
        for path in self.metadata_dir.glob("*.json"):
            version, _, role = path.name[:-5].partition(".")
            if version.isdigit() and role not in (Root.type, Snapshot.type, Timestamp.type):
                hashes.update(t.hashes["sha256"] for t in self._load(path.name).signed.targets.values())
        return hashes

    # -- writing ----------------------------------------------------------------
    def _write(self, name: str, md: Metadata) -> None:
        """Write-temp-and-rename, so a reader never sees half a file."""
        atomic_write(self.metadata_dir / name, md.to_bytes(_SERIALIZER))

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time (``hub publish`` and a running ``hub serve``)."""
        self.repo_dir.mkdir(parents=True, exist_ok=True)
        with open(self.repo_dir / ".lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _sign(self, signed, signer: Signer) -> Metadata:
        md = Metadata(signed)
        md.sign(signer)
        return md

    def init(self) -> None:
        """Create root v1 and empty targets/snapshot/timestamp (once)."""
        if self.root_signer is None:
            raise SyncError("初始化仓库需要根密钥", "the root key is needed to create the repository")
        with self.locked():
            if self.exists():
                return
            now = now_utc()
            root = Root(expires=now + ROOT_LIFETIME, consistent_snapshot=True)
            root.add_key(self.root_signer.public_key, Root.type)
            for role in (Targets.type, Snapshot.type, Timestamp.type):
                root.add_key(self.online_signer.public_key, role)
            md = self._sign(root, self.root_signer)
            self._write("1.root.json", md)
            self._write("root.json", md)
            self._publish_locked({}, {}, now, changed_channels=set())

    def publish(self, channels: dict[str, dict[str, TargetFile]], indexes: dict[str, TargetFile],
                changed_channels: set[str] | None = None) -> RepoState:
        """Publish a new moment: channel roles (only ``changed_channels`` get a new
        version; None = all), the school index targets, snapshot and timestamp."""
        for ch in channels:
            check_channel_id(ch)
        with self.locked():
            return self._publish_locked(channels, indexes, now_utc(), changed_channels)

    def _publish_locked(self, channels, indexes, now, changed_channels) -> RepoState:
        old = self.state() if self.exists() else RepoState(0, 0, {}, now)
        online = self.online_signer
        snap_meta: dict[str, MetaFile] = {}
        roles = {}
        for ch in sorted(channels):
            roles[ch] = DelegatedRole(name=ch, keyids=[online.public_key.keyid], threshold=1, terminating=True,
                                      paths=[f"{ch}/*/*"])
            if changed_channels is None or ch in changed_channels or ch not in old.channel_versions:
                version = old.channel_versions.get(ch, 0) + 1
                self._write(f"{version}.{ch}.json", self._sign(
                    Targets(version=version, expires=now + CHANNEL_LIFETIME, targets=dict(channels[ch])), online))
            else:
                version = old.channel_versions[ch]
            snap_meta[f"{ch}.json"] = MetaFile(version=version)
        targets_version = old.targets_version + 1
        delegations = Delegations(keys={online.public_key.keyid: online.public_key}, roles=roles)
        self._write(f"{targets_version}.targets.json", self._sign(
            Targets(version=targets_version, expires=now + TARGETS_LIFETIME, targets=dict(indexes),
                    delegations=delegations), online))
        snap_meta["targets.json"] = MetaFile(version=targets_version)
        snapshot_version = old.snapshot_version + 1
        self._write(f"{snapshot_version}.snapshot.json", self._sign(
            Snapshot(version=snapshot_version, expires=now + SNAPSHOT_LIFETIME, meta=snap_meta), online))
        self._write_timestamp(snapshot_version, now)
        self._prune(snapshot_version)
        return self.state()

    def _prune(self, snapshot_version: int) -> None:
        """Remove versioned metadata that no recent moment refers to.

        Every publish adds files; without this the folder grows for ever. A client
        that read the previous timestamp may still be fetching that moment's
        snapshot and roles, so the last ``KEEP_MOMENTS`` stay. Every root version
        stays: a device that slept through rotations walks the whole chain."""
        keep: set[str] = set()
        for version in range(max(1, snapshot_version - KEEP_MOMENTS + 1), snapshot_version + 1):
            name = f"{version}.snapshot.json"
            if (self.metadata_dir / name).is_file():
                keep.add(name)
                keep.update(f"{meta.version}.{role}" for role, meta in self._load(name).signed.meta.items())
        for path in self.metadata_dir.glob("*.json"):
            prefix = path.name.split(".", 1)[0]
            if prefix.isdigit() and not path.name.endswith(".root.json") and path.name not in keep:
                path.unlink()

    def _write_timestamp(self, snapshot_version: int, now: datetime) -> None:
        version = self._load("timestamp.json").signed.version + 1 if self.exists() else 1
        ts = Timestamp(version=version, expires=now + TIMESTAMP_LIFETIME, snapshot_meta=MetaFile(version=snapshot_version),
                       unrecognized_fields={SIGNED_AT: now.strftime("%Y-%m-%dT%H:%M:%SZ")})
        self._write("timestamp.json", self._sign(ts, self.online_signer))

    def refresh_timestamp(self, force: bool = False) -> bool:
        """Re-sign the timestamp when it is close to expiry (a running hub calls
        this, so a school with a good clock never sees a frozen repository)."""
        with self.locked():
            if not self.exists():
                return False
            state = self.state()
            now = now_utc()
            if not force and state.timestamp_expires - now > TIMESTAMP_RESIGN_BEFORE:
                return False
            self._write_timestamp(state.snapshot_version, now)
            return True

    def rotate_online_key(self, new_online: Signer) -> None:
        """Root-signed key rotation: a new root version lists ``new_online`` for
        targets, snapshot and timestamp; everything is re-signed with it."""
        if self.root_signer is None:
            raise SyncError("轮换密钥需要根密钥", "the root key is needed to rotate keys")
        with self.locked():
            root_md = self._load("root.json")
            root: Root = root_md.signed
            for role in (Targets.type, Snapshot.type, Timestamp.type):
                for keyid in list(root.roles[role].keyids):
                    root.revoke_key(keyid, role)
                root.add_key(new_online.public_key, role)
            root.version += 1
            root.expires = now_utc() + ROOT_LIFETIME
            md = self._sign(root, self.root_signer)
            self._write(f"{root.version}.root.json", md)
            self._write("root.json", md)
            state = self.state()
            channels = {ch: self._load(f"{v}.{ch}.json").signed.targets for ch, v in state.channel_versions.items()}
            indexes = self._load(f"{state.targets_version}.targets.json").signed.targets
            self.online_signer = new_online
            self._publish_locked(channels, indexes, now_utc(), changed_channels=None)


def signed_at(timestamp: Metadata) -> datetime | None:
    """The hub's signed clock reading in a timestamp, if present and well formed."""
    raw = timestamp.signed.unrecognized_fields.get(SIGNED_AT)
    try:
        return datetime.strptime(str(raw), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
