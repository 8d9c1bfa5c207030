"""Channels another hub signs (a province's), republished by this hub's TUF repository.

The county's ``targets`` delegates such a channel to the other hub's key (the delegation
carries ``MIRROR_FIELD``, where it comes from) and lists the other hub's signed role files
(the channel's and its bins'), copied byte for byte: this repository never signs them.
``hub_sync.hub.mirror_sync`` verifies and keeps them; ``TufRepo.publish`` calls
``mirrored_entries``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from securesystemslib.signer import Key
from tuf.api.metadata import DelegatedRole, Metadata, MetaFile

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import SyncError

MIRROR_FIELD = "x-school-edge-mirror"  # extra field of a mirrored channel's delegation: where it comes from


@dataclass(frozen=True)
class MirroredRole:
    """A channel another hub signs, as this repository republishes it: the delegation
    (keys, threshold, paths) that hub's targets role gives it, and its signed role
    files (the channel's and its bins'), role name -> (version, exact bytes)."""

    name: str
    origin: str  # where it comes from (the other hub's URL), kept in the delegation
    keyids: list[str]
    threshold: int
    paths: list[str]
    keys: dict[str, Key]
    files: dict[str, tuple[int, bytes]]


def mirrored_entries(metadata_dir: Path, load: Callable[[str], Metadata], old, mirrored: dict[str, MirroredRole] | None,
                     old_meta: dict[str, MetaFile], roles: dict[str, DelegatedRole], keys: dict,
                     snap_meta: dict[str, MetaFile]) -> None:
    """For a publish of ``TufRepo`` (``old``: its last ``RepoState``; ``load``: its reader of a
    published role file): delegate each mirrored channel to its own hub's key and put its signed
    files, unchanged, into this repository and the snapshot (``mirrored`` None: the ones
    last published stay as they are). A dropped mirror keeps its snapshot entries,
    like a retired channel: clients refuse a snapshot that forgets a role."""
    if mirrored is None:
        if old.mirrored_versions:
            top = load(f"{old.targets_version}.targets.json").signed.delegations
            for name in sorted(old.mirrored_versions):
                roles[name] = top.roles[name]
                keys.update({k: top.keys[k] for k in top.roles[name].keyids if k in top.keys})
        return
    for name in sorted(mirrored):
        m = mirrored[name]
        for role, (version, data) in sorted(m.files.items()):
            entry = f"{role}.json"
            known = old_meta.get(entry)
            path = metadata_dir / f"{version}.{role}.json"
            if known is not None and (known.version > version or (
                    known.version == version and path.is_file() and path.read_bytes() != data)):
                raise SyncError(f"镜像频道 {name} 的角色 {role} 版本 {version} 早于或不同于已发布的 {known.version}，未发布",
                                f"mirrored role {role} version {version} is older than or differs from the published "
                                f"version {known.version}; nothing published")
            if not (path.is_file() and path.read_bytes() == data):
                atomic_write(path, data)
            snap_meta[entry] = MetaFile(version=version)
        roles[name] = DelegatedRole(name=name, keyids=list(m.keyids), threshold=m.threshold, terminating=True,
                                    paths=list(m.paths), unrecognized_fields={MIRROR_FIELD: m.origin})
        keys.update(m.keys)
