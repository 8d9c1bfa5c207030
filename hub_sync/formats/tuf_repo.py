"""The hub's side of The Update Framework: a repository built with python-tuf's
metadata API.

Roles::

    root       signed by the root key; lists the keys of every top-level role
    targets    online key; one delegated role per channel (role name = channel id,
               paths ``<channel>/*/*``) and one target per school index
               ``schools/<school_code>.json`` (which channels a school gets)
    firmware   the ``firmware`` key (its own, delegated from targets like a channel):
               the appliance software's releases ``firmware/<version>/...`` and the
               rollout rules ``firmware/rollout.json`` (``hub_sync.formats.firmware_rollout``)
    <channel>  online key; one target per resource file, ``<channel>/<resource>/<sha256>``,
               with the curriculum metadata in the target's ``custom`` field; a big
               channel instead delegates to hash bins ``<channel>.bin-<hex>`` that hold
               those targets (succinct hash-bin delegation, ``hub_sync.formats.tuf_bins``)
    <mirror>   a channel mirrored from another hub (a province's, ``hub_sync.hub.mirror_sync``):
               targets delegates it to THAT hub's key, and its role (and bins) are that
               hub's signed files copied byte for byte, at that hub's versions; this
               repository never signs them (the delegation carries ``MIRROR_FIELD``)
    snapshot   online key; the versions of targets, every channel role and every bin
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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from securesystemslib.signer import Signer
from tuf.api.metadata import (DelegatedRole, Delegations, Metadata, MetaFile, Root, Snapshot, Targets, TargetFile,
                              Timestamp)
from tuf.api.serialization.json import JSONSerializer

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import FormatError, SyncError
from hub_sync.formats.tuf_mirrored import MIRROR_FIELD, MirroredRole, mirrored_entries
from hub_sync.formats.tuf_bins import bin_bits, split_into_bins, succinct_roles

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
FIRMWARE_ROLE = "firmware"
# firmware/rollout.json, firmware/<V>/manifest.json, firmware/<V>/wheels/<name>.whl
FIRMWARE_PATHS = [f"{FIRMWARE_ROLE}/*", f"{FIRMWARE_ROLE}/*/*", f"{FIRMWARE_ROLE}/*/*/*"]
RESERVED_ROLES = {"root", "targets", "snapshot", "timestamp", "schools", FIRMWARE_ROLE}
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
    firmware_version: int = 0  # the firmware role's version (0: never published)
    mirrored_versions: dict[str, int] = field(default_factory=dict)  # mirrored channel -> its role's version


class TufRepo:
    """A TUF repository in ``repo_dir/metadata`` (targets live in a BlobStore)."""

    def __init__(self, repo_dir: str | Path, root_signer: Signer | None, online_signer: Signer,
                 firmware_signer: Signer | None = None) -> None:
        self.repo_dir = Path(repo_dir)
        self.metadata_dir = self.repo_dir / "metadata"
        self.root_signer = root_signer
        self.online_signer = online_signer
        self.firmware_signer = firmware_signer  # the firmware role's key, when this hub has one

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
        """The versions of the last published moment; the channels are the roles
        ``targets`` delegates to (the snapshot also lists bins and retired roles)."""
        ts = self._load("timestamp.json")
        snap = self._load(f"{ts.signed.snapshot_meta.version}.snapshot.json").signed
        targets_version = snap.meta["targets.json"].version
        delegations = self._load(f"{targets_version}.targets.json").signed.delegations
        delegated = (delegations.roles or {}) if delegations else {}
        mirrored = {name: snap.meta[f"{name}.json"].version for name, role in delegated.items()
                    if MIRROR_FIELD in role.unrecognized_fields}
        channels = {name: snap.meta[f"{name}.json"].version for name in delegated
                    if name != FIRMWARE_ROLE and name not in mirrored}
        firmware = snap.meta[f"{FIRMWARE_ROLE}.json"].version if FIRMWARE_ROLE in delegated else 0
        return RepoState(snap.version, targets_version, channels, ts.signed.expires, firmware, mirrored)

    def snapshot_meta(self, snapshot_version: int) -> dict[str, MetaFile]:
        """``<role>.json`` -> version, as snapshot ``snapshot_version`` lists them."""
        return self._load(f"{snapshot_version}.snapshot.json").signed.meta

    def moment_files(self) -> list[Path]:
        """The versioned metadata files of the last moment's snapshot entries
        (targets, channel roles, bins), as a client fetches them."""
        meta = self.snapshot_meta(self.state().snapshot_version)
        return [self.metadata_dir / f"{m.version}.{name}" for name, m in sorted(meta.items())]

    def channel_targets(self, channel: str) -> dict[str, TargetFile]:
        """The targets of a channel as last published, gathered from its bins if it
        has some (empty if never published)."""
        state = self.state() if self.exists() else None
        if state is None or channel not in state.channel_versions:
            return {}
        role = self._load(f"{state.channel_versions[channel]}.{channel}.json").signed
        succinct = role.delegations.succinct_roles if role.delegations else None
        if succinct is None:
            return role.targets
        meta = self.snapshot_meta(state.snapshot_version)
        out: dict[str, TargetFile] = {}
        for name in succinct.get_roles():
            if f"{name}.json" in meta:
                out.update(self._load(f"{meta[f'{name}.json'].version}.{name}.json").signed.targets)
        return out

    def firmware_targets(self) -> dict[str, TargetFile]:
        """The targets of the firmware role as last published (empty if never)."""
        state = self.state() if self.exists() else None
        if state is None or not state.firmware_version:
            return {}
        return self._load(f"{state.firmware_version}.{FIRMWARE_ROLE}.json").signed.targets

    def layout_outdated(self, channel: str, n_targets: int) -> bool:
        """True when a published channel of ``n_targets`` files should have more hash
        bins than it has (a hub that published before bins, or a channel that grew)."""
        versions = self.state().channel_versions if self.exists() else {}
        if channel not in versions:
            return False
        role = self._load(f"{versions[channel]}.{channel}.json").signed
        bits = role.delegations.succinct_roles.bit_length if role.delegations and role.delegations.succinct_roles else 0
        return bin_bits(n_targets, bits) != bits

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

    def publish_firmware(self, targets: dict[str, TargetFile]) -> RepoState:
        """Publish a new moment whose firmware role lists ``targets`` (signed with the
        firmware key); channels and school indexes stay as published."""
        if self.firmware_signer is None:
            raise SyncError("发布软件更新需要 firmware 密钥", "the firmware key is needed to publish appliance software")
        for path in targets:
            if not DelegatedRole(name=FIRMWARE_ROLE, keyids=[], threshold=1, terminating=True,
                                 paths=FIRMWARE_PATHS).is_delegated_path(path):
                raise FormatError(f"软件更新的路径 {path} 无效", f"firmware target path {path!r} is invalid")
        with self.locked():
            state = self.state()
            # unchanged channels are only renewed when due, so their targets are not needed here
            channels: dict[str, dict[str, TargetFile]] = {ch: {} for ch in state.channel_versions}
            indexes = self._load(f"{state.targets_version}.targets.json").signed.targets
            return self._publish_locked(channels, indexes, now_utc(), changed_channels=set(), firmware=targets)

    def publish(self, channels: dict[str, dict[str, TargetFile]], indexes: dict[str, TargetFile],
                changed_channels: set[str] | None = None,
                mirrored: dict[str, MirroredRole] | None = None) -> RepoState:
        """Publish a new moment: channel roles (only ``changed_channels`` get a new
        version; None = all), the school index targets, snapshot and timestamp.
        ``mirrored``: the channels other hubs sign, exactly these (None = keep the
        ones last published)."""
        for ch in [*channels, *(mirrored or {})]:
            check_channel_id(ch)
        clash = set(channels) & set(mirrored or {})
        if clash:
            raise FormatError(f"频道 {', '.join(sorted(clash))} 既是本平台的又是镜像的",
                              f"channel(s) {', '.join(sorted(clash))} cannot be both this hub's own and mirrored")
        with self.locked():
            return self._publish_locked(channels, indexes, now_utc(), changed_channels, mirrored=mirrored)

    def _publish_locked(self, channels, indexes, now, changed_channels, firmware=None, mirrored=None) -> RepoState:
        old = self.state() if self.exists() else RepoState(0, 0, {}, now)
        old_meta = self.snapshot_meta(old.snapshot_version) if old.snapshot_version else {}
        online = self.online_signer
        # unchanged channels, their bins and retired roles keep their entries: python-tuf's
        # client refuses a snapshot that drops a role its last snapshot listed
        snap_meta: dict[str, MetaFile] = dict(old_meta)
        roles = {}
        for ch in sorted(channels):
            roles[ch] = DelegatedRole(name=ch, keyids=[online.public_key.keyid], threshold=1, terminating=True,
                                      paths=[f"{ch}/*/*"])
            if changed_channels is None or ch in changed_channels or ch not in old.channel_versions:
                snap_meta.update(self._write_channel(ch, channels[ch], old_meta, now, resign=changed_channels is None))
            else:
                snap_meta.update(self._renew_due(ch, old_meta, now))
        keys = {online.public_key.keyid: online.public_key}
        mirrored_entries(self.metadata_dir, self._load, old, mirrored, old_meta, roles, keys, snap_meta)
        firmware_key = self._firmware_entries(old, firmware, now, snap_meta)
        if firmware_key is not None:
            roles[FIRMWARE_ROLE] = DelegatedRole(name=FIRMWARE_ROLE, keyids=[firmware_key.keyid], threshold=1,
                                                 terminating=True, paths=list(FIRMWARE_PATHS))
            keys[firmware_key.keyid] = firmware_key
        delegations = Delegations(keys=keys, roles=roles)
        targets = Targets(version=old.targets_version + 1, expires=now + TARGETS_LIFETIME, targets=dict(indexes),
                          delegations=delegations)
        if old.targets_version:
            # the same indexes and channels keep their version: each school would fetch it again for nothing
            kept = self._load(f"{old.targets_version}.targets.json").signed
            if _same_targets(kept.targets, targets.targets) and kept.delegations == delegations \
                    and not _due(kept, now, TARGETS_LIFETIME):
                targets = kept
        if targets.version != old.targets_version:
            self._write(f"{targets.version}.targets.json", self._sign(targets, online))
        snap_meta["targets.json"] = MetaFile(version=targets.version)
        snapshot_version = old.snapshot_version + 1
        self._write(f"{snapshot_version}.snapshot.json", self._sign(
            Snapshot(version=snapshot_version, expires=now + SNAPSHOT_LIFETIME, meta=snap_meta), online))
        self._write_timestamp(snapshot_version, now)
        self._prune(snapshot_version)
        return self.state()

    def _write_channel(self, ch: str, targets: dict[str, TargetFile], old_meta: dict[str, MetaFile], now: datetime,
                       resign: bool) -> dict[str, MetaFile]:
        """Sign a new version of channel ``ch`` and of those of its bins whose targets
        changed (every bin when ``resign``, the key or the bin count changed); return
        their snapshot entries."""
        online = self.online_signer
        keyid = online.public_key.keyid
        old_version = old_meta[f"{ch}.json"].version if f"{ch}.json" in old_meta else 0
        old_role = self._load(f"{old_version}.{ch}.json").signed if old_version else None
        old_bins = old_role.delegations.succinct_roles if old_role and old_role.delegations else None
        bits = bin_bits(len(targets), old_bins.bit_length if old_bins else 0)
        out: dict[str, MetaFile] = {}
        if bits == 0:
            role = Targets(version=old_version + 1, expires=now + CHANNEL_LIFETIME, targets=dict(targets))
        else:
            bins = succinct_roles(ch, bits, keyid)
            same_layout = not resign and old_bins is not None and old_bins.bit_length == bits \
                and old_bins.keyids == [keyid]
            for name, bin_targets in split_into_bins(targets, bins).items():
                meta = old_meta.get(f"{name}.json")
                kept = self._load(f"{meta.version}.{name}.json").signed if same_layout and meta is not None else None
                if kept is not None and _same_targets(kept.targets, bin_targets) and not _due(kept, now, CHANNEL_LIFETIME):
                    continue  # an untouched bin keeps its version: no school fetches it again
                version = meta.version + 1 if meta is not None else 1
                self._write(f"{version}.{name}.json", self._sign(
                    Targets(version=version, expires=now + CHANNEL_LIFETIME, targets=bin_targets), online))
                out[f"{name}.json"] = MetaFile(version=version)
            if old_bins is not None and old_bins.bit_length != bits:
                # bins the channel outgrew stay in the snapshot (see tuf_bins) but empty: no file
                # stays published because a role nobody delegates to still lists it
                for name in set(old_bins.get_roles()) - set(bins.get_roles()):
                    if f"{name}.json" in old_meta:
                        version = old_meta[f"{name}.json"].version + 1
                        self._write(f"{version}.{name}.json", self._sign(
                            Targets(version=version, expires=now + CHANNEL_LIFETIME, targets={}), online))
                        out[f"{name}.json"] = MetaFile(version=version)
            role = Targets(version=old_version + 1, expires=now + CHANNEL_LIFETIME, targets={},
                           delegations=Delegations(keys={keyid: online.public_key}, succinct_roles=bins))
        # the channel role is re-signed on every change: its version is the channel's version
        self._write(f"{role.version}.{ch}.json", self._sign(role, online))
        out[f"{ch}.json"] = MetaFile(version=role.version)
        return out

    def _firmware_entries(self, old: RepoState, firmware: dict[str, TargetFile] | None, now: datetime,
                          snap_meta: dict[str, MetaFile]):
        """Sign the firmware role anew (``firmware`` given) or keep the published one
        (renewed when due and this repository holds its key); return the key the
        targets role delegates it to, or None when the hub never published firmware."""
        if firmware is not None:
            version = old.firmware_version + 1
            self._write(f"{version}.{FIRMWARE_ROLE}.json", self._sign(
                Targets(version=version, expires=now + CHANNEL_LIFETIME, targets=dict(firmware)), self.firmware_signer))
            snap_meta[f"{FIRMWARE_ROLE}.json"] = MetaFile(version=version)
            return self.firmware_signer.public_key
        if not old.firmware_version:
            return None
        top = self._load(f"{old.targets_version}.targets.json").signed
        key = top.delegations.keys[top.delegations.roles[FIRMWARE_ROLE].keyids[0]]
        role = self._load(f"{old.firmware_version}.{FIRMWARE_ROLE}.json").signed
        signer = self.firmware_signer
        if signer is not None and signer.public_key.keyid == key.keyid and _due(role, now, CHANNEL_LIFETIME):
            role.version, role.expires = role.version + 1, now + CHANNEL_LIFETIME
            self._write(f"{role.version}.{FIRMWARE_ROLE}.json", self._sign(role, signer))
            snap_meta[f"{FIRMWARE_ROLE}.json"] = MetaFile(version=role.version)
        return key

    def _renew_due(self, ch: str, old_meta: dict[str, MetaFile], now: datetime) -> dict[str, MetaFile]:
        """Re-sign, unchanged, the role of an unchanged channel and those of its bins
        that are past half their lifetime, so none of them expires while the hub
        publishes (a bin nobody touches for a month is the common case)."""
        out: dict[str, MetaFile] = {}
        role = self._load(f"{old_meta[f'{ch}.json'].version}.{ch}.json").signed
        names = [ch] + (list(role.delegations.succinct_roles.get_roles())
                        if role.delegations and role.delegations.succinct_roles else [])
        for name in names:
            meta = old_meta.get(f"{name}.json")
            signed = role if name == ch else (self._load(f"{meta.version}.{name}.json").signed if meta else None)
            if signed is None or not _due(signed, now, CHANNEL_LIFETIME):
                continue
            signed.version, signed.expires = signed.version + 1, now + CHANNEL_LIFETIME
            self._write(f"{signed.version}.{name}.json", self._sign(signed, self.online_signer))
            out[f"{name}.json"] = MetaFile(version=signed.version)
        return out

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

    def timestamp_due(self) -> bool:
        """True when ``refresh_timestamp`` would sign something (read without the lock:
        the caller takes the locks only then, a metadata request being the common case)."""
        return self.exists() and self.state().timestamp_expires - now_utc() <= TIMESTAMP_RESIGN_BEFORE

    def refresh_timestamp(self, force: bool = False) -> bool:
        """Re-sign the timestamp when it is close to expiry (a running hub calls
        this, so a school with a good clock never sees a frozen repository).

        A county may publish nothing for weeks: when the snapshot too is past half
        its lifetime, the same content is signed again as a new moment instead
        (snapshot, and any targets, channel role or bin that is due), so nothing a
        school needs expires while the hub runs."""
        with self.locked():
            if not self.exists():
                return False
            state = self.state()
            now = now_utc()
            if not force and state.timestamp_expires - now > TIMESTAMP_RESIGN_BEFORE:
                return False
            snapshot = self._load(f"{state.snapshot_version}.snapshot.json").signed
            if _due(snapshot, now, SNAPSHOT_LIFETIME):
                channels = {ch: self.channel_targets(ch) for ch in state.channel_versions}
                indexes = self._load(f"{state.targets_version}.targets.json").signed.targets
                self._publish_locked(channels, indexes, now, changed_channels=set())
            else:
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
            channels = {ch: self.channel_targets(ch) for ch in state.channel_versions}
            indexes = self._load(f"{state.targets_version}.targets.json").signed.targets
            self.online_signer = new_online
            self._publish_locked(channels, indexes, now_utc(), changed_channels=None)


def _due(signed: Targets | Snapshot, now: datetime, lifetime: timedelta) -> bool:
    """True when less than half of ``lifetime`` is left before ``signed`` expires."""
    return signed.expires - now < lifetime / 2


def _same_targets(old: dict[str, TargetFile], new: dict[str, TargetFile]) -> bool:
    return {p: t.to_dict() for p, t in old.items()} == {p: t.to_dict() for p, t in new.items()}


def signed_at(timestamp: Metadata) -> datetime | None:
    """The hub's signed clock reading in a timestamp, if present and well formed."""
    raw = timestamp.signed.unrecognized_fields.get(SIGNED_AT)
    try:
        return datetime.strptime(str(raw), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
