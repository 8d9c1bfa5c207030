"""Publishing: the hub's channels and school choices become a new TUF moment.

Each resource file is a target ``<channel>/<resource>/<sha256>`` whose ``custom``
field carries the resource's curriculum metadata and the file's path and mime
(in the channel's role, or in its hash bins: ``hub_sync.formats.tuf_bins``).
Each school gets an index target ``schools/<code>.json`` naming its channels; the
appliance reads their targets from the same snapshot, so it gets exactly what one
moment says, and the index does not change when a resource is added.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from tuf.api.metadata import TargetFile

from hub_sync.core.atomic_file import fsync_dir
from hub_sync.core.blobstore import is_sha256
from hub_sync.core.keys import load_signer
from hub_sync.formats.envelope import canonical_json
from hub_sync.formats.tuf_repo import MirroredRole, RepoState, TufRepo, index_path, target_path
from hub_sync.hub.channel_mirrors import ChannelMirrors, mirrored_roles
from hub_sync.hub.channels import Channels
from hub_sync.hub.rsync_daemon import PUBLISHED_DIR, link_published

if TYPE_CHECKING:  # the Hub imports this module; a type-only import keeps the layers one-way
    from hub_sync.hub.hub import Hub

log = logging.getLogger(__name__)

FIRMWARE_KEY_FILE = "firmware.pem"  # in the hub's keys folder: signs the firmware role and its releases
PUBLISH_LOCK = "tuf-publish"  # the database lock every writer of the TUF repository holds


@contextlib.contextmanager
def publish_lock(hub: Hub) -> Iterator[None]:
    """One TUF writer at a time across every ``hub serve`` process and box on one PostgreSQL
    database: a transaction holding the ``tuf-publish`` advisory lock, taken BEFORE the
    repository's own file lock (``TufRepo.locked``), never after it; a nested call joins.
    A SQLite hub is one box, where that file lock alone serialises writers."""
    if hub.db.dialect == "sqlite":  # one box: the file lock is enough, and no write lock is held meanwhile
        yield
        return
    with hub.db.transaction():
        hub.db.lock(PUBLISH_LOCK)
        yield


def refresh_timestamp(hub: Hub) -> bool:
    """Re-sign the timestamp when it is due (see ``TufRepo.refresh_timestamp``), under the locks."""
    repo = repo_for(hub)
    if not repo.timestamp_due():
        return False
    with publish_lock(hub):
        return repo.refresh_timestamp()


def repo_for(hub: Hub) -> TufRepo:
    """The hub's TUF repository (created on first use)."""
    firmware_key = hub.data_dir / "keys" / FIRMWARE_KEY_FILE  # made by the first ``hub firmware publish``
    repo = TufRepo(hub.repo_dir, hub.root_signer, hub.online_signer,
                   load_signer(firmware_key) if firmware_key.is_file() else None)
    if not repo.exists():
        repo.init()
    return repo


def channel_targets(channels: Channels, channel: str) -> dict[str, TargetFile]:
    """The TUF targets of a channel's current resources."""
    out = {}
    for resource_id, meta, files in channels.resources(channel):
        for order, f in enumerate(files):  # the first file is the resource's main one: keep the order
            path = target_path(channel, resource_id, f["sha256"])
            custom = {"resource_id": resource_id, "channel": channel, "path": f["path"], "mime": f["mime"],
                      "order": order, **meta}
            out[path] = TargetFile(length=int(f["size"]), hashes={"sha256": f["sha256"]}, path=path,
                                   unrecognized_fields={"custom": custom})
    return out


def school_index(channels: Channels, school_code: str, hidden: set[str] = frozenset()) -> bytes:
    """The index bytes of one school: its channels (their targets are in the channel
    roles; listing them here would re-send the whole list for every added file), but
    not the ``hidden`` ones (mirrored channels not synced yet: no role to point to)."""
    chosen = [c for c in channels.channels_for(school_code) if c.id not in hidden]
    return canonical_json({
        "school_code": school_code,
        "channels": [{"id": c.id, "title": c.title, "mandatory": c.mandatory} for c in chosen],
    })


def publish(hub: Hub, changed: set[str] | None = None) -> RepoState:
    """Publish every channel (new versions for ``changed``; None = those whose
    content differs, or whose hash bins are too few for its size: the one publish
    that moves a hub from the layout before bins) and every school's index.
    Returns the new versions.

    When no channel is named and nothing differs from the last moment (an enrollment,
    a subscription the school already had), nothing is signed: devices would fetch
    new metadata for nothing, and each new moment pushes an older one out of reach.

    Mirrored channels (``hub_sync.hub.mirror_sync``) go in as their last verified copy,
    delegated to the other hub's key; one removed since the last moment leaves."""
    with publish_lock(hub):
        return _publish(hub, changed)


def _publish(hub: Hub, changed: set[str] | None) -> RepoState:
    repo = repo_for(hub)
    chans = Channels(hub.db)
    mirror_ids = ChannelMirrors(hub.db).ids()
    mirrored = mirrored_roles(hub, mirror_ids)
    current = {c.id: channel_targets(chans, c.id) for c in chans.all() if c.id not in mirror_ids}
    if changed is None:
        changed = {ch for ch, targets in current.items()
                   if _differs(repo.channel_targets(ch), targets) or repo.layout_outdated(ch, len(targets))}
    # a published channel that is not in ``changed`` keeps its published version (and bytes):
    # the repository signs only the changed ones and new channels
    published = current
    indexes = {}
    for code in chans.schools():
        data = school_index(chans, code, hidden=mirror_ids - set(mirrored))
        sha = hub.store.put_bytes(data).sha256
        path = index_path(code)
        indexes[path] = TargetFile(length=len(data), hashes={"sha256": sha}, path=path)
    if not changed and _same_moment(repo, published, indexes, mirrored):
        return repo.state()
    state = repo.publish(published, indexes, changed_channels=changed, mirrored=mirrored)
    link_published_files(hub)
    log.info("published snapshot %d (channels: %s; mirrored: %s)", state.snapshot_version,
             ", ".join(f"{c} v{v}" for c, v in sorted(state.channel_versions.items())) or "-",
             ", ".join(f"{c} v{v}" for c, v in sorted(state.mirrored_versions.items())) or "-")
    return state


def _differs(old: dict[str, TargetFile], new: dict[str, TargetFile]) -> bool:
    return {p: t.to_dict() for p, t in old.items()} != {p: t.to_dict() for p, t in new.items()}


def _same_moment(repo: TufRepo, channels: dict[str, dict[str, TargetFile]], indexes: dict[str, TargetFile],
                 mirrored: dict[str, MirroredRole]) -> bool:
    """True when the last published moment already has these channels (unchanged), indexes
    and mirrored roles (same versions)."""
    if not repo.exists():
        return False
    state = repo.state()
    return set(channels) == set(state.channel_versions) and not _differs(repo.index_targets(), indexes) \
        and state.mirrored_versions == {name: m.files[name][0] for name, m in mirrored.items()}


def link_published_files(hub: Hub) -> Path:
    """Bring the rsync module's folder (``rsync_daemon.link_published``) up to date
    with the targets of the kept TUF moments; returns the folder."""
    repo = repo_for(hub)
    with publish_lock(hub), repo.locked():  # no publish (and no prune) while the folder follows the metadata
        return link_published(hub.store, repo.published_hashes(), hub.data_dir / PUBLISHED_DIR)


def published_file(hub: Hub, sha256: str) -> Path | None:
    """The published copy of blob ``sha256`` (its hard link in the published folder),
    or None when no kept TUF moment lists it: teachers' uploads waiting for review and
    withdrawn files are not handed out by hash, over HTTP as over rsync."""
    if not is_sha256(sha256):
        return None
    path = hub.data_dir / PUBLISHED_DIR / sha256[:2] / sha256[2:]
    return path if path.is_file() else None


def add_files(hub: Hub, files: list[Path], mimes: dict[str, str] | None = None) -> list[dict]:
    """Put local files into the hub store; return their file entries."""
    import mimetypes

    out = []
    for path in files:
        blob = hub.store.put_file(path)
        mime = (mimes or {}).get(path.name) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        out.append({"path": path.name, "sha256": blob.sha256, "size": blob.size, "mime": mime})
    return out


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rotate_online_key(hub: Hub) -> str:
    """Make a new online key, have the root vouch for it (root v+1) and re-sign
    everything with it; return its key id. Appliances follow through the root chain.

    The old key is kept as ``keys/retired/<keyid>.pem``: boxes that devices sealed
    to it before they saw the new root (a transferred student's space) must still open."""
    from hub_sync.core.keys import generate_key

    keys = hub.data_dir / "keys"
    old = hub.online_signer
    new = generate_key(keys / "online.pem.new")
    retired = keys / "retired"
    retired.mkdir(mode=0o700, exist_ok=True)
    shutil.copy2(keys / "online.pem", retired / f"{old.public_key.keyid}.pem")
    fsync_dir(retired)
    with publish_lock(hub):
        repo_for(hub).rotate_online_key(new)
    (keys / "online.pem.new").replace(keys / "online.pem")
    fsync_dir(keys)
    return new.public_key.keyid


def online_key_files(hub: Hub) -> list[Path]:
    """The current online key first, then the retired ones (for opening what was sealed to them)."""
    keys = hub.data_dir / "keys"
    return [keys / "online.pem", *sorted((keys / "retired").glob("*.pem"))]
