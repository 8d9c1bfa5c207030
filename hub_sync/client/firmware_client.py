"""The appliance's side of software updates over the link: which release is meant
for this device, and its files, verified, with as few bytes moved as possible.

``check_offer`` refreshes the TUF metadata through the pinned root (the same
ngclient path as content sync), loads the delegated role ``firmware`` (verified
against the key targets delegates it to), reads the signed rollout rules and
returns the one release meant for this device (``version_for``), or None.

``fetch_release`` gets only the files whose sha256 the firmware store does not
already hold (the installed release's files are in it: a release that changes one
module moves that module), with the resumable transports of content sync (rsync
with a partial folder, HTTP Range as fallback), checks each against its TUF target,
then assembles a release folder of hard links from the store, checks every file
against the manifest and the manifest against the release's signature. Only then
is the folder handed to the installer.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from securesystemslib.signer import Key
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile, Targets

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.blobstore import BlobStore
from hub_sync.core.errors import FormatError, SignatureError
from hub_sync.client.sync_client import PARTIAL_DIR, FetchReport, Plan, SyncClient, translate
from hub_sync.formats.firmware_release import (MANIFEST_NAME, SIGNATURE_NAME, check_school, load_manifest,
                                               open_release, safe_relpath, verify_files)
from hub_sync.formats.firmware_rollout import ROLLOUT_TARGET, Rules, load_rules, version_for
from hub_sync.formats.tuf_repo import FIRMWARE_ROLE

log = logging.getLogger(__name__)

OFFER_DIR = "firmware-offer"  # in the sync state folder: the verified rules, manifest and signature of the offer
STAGING_DIR = "firmware-staging"  # the firmware transfers' own staging (content sync's partial files stay apart)


@dataclass
class Offer:
    """The release meant for this device, as the verified metadata lists it."""

    version: str
    rules: Rules
    manifest_data: bytes
    envelope: bytes
    statement: dict
    files: dict[str, TargetFile] = field(default_factory=dict)  # relative path -> TUF target
    keys: list[Key] = field(default_factory=list)  # the firmware role's keys (verify release.dsse)

    @property
    def size(self) -> int:
        return sum(t.length for t in self.files.values())


def firmware_keys(targets: Targets) -> list[Key]:
    """The keys the (verified) top-level targets role delegates ``firmware`` to."""
    delegations = targets.delegations
    role = (delegations.roles or {}).get(FIRMWARE_ROLE) if delegations else None
    if role is None:
        return []
    return [delegations.keys[k] for k in role.keyids if k in delegations.keys]


def trusted_firmware_keys(metadata_dir: Path) -> list[Key]:
    """The firmware keys of the appliance's trusted TUF metadata, as the last
    verified refresh left it (a stick's release is checked with these)."""
    path = Path(metadata_dir) / "targets.json"
    if not path.is_file():
        return []
    return firmware_keys(Metadata[Targets].from_bytes(path.read_bytes()).signed)


def check_offer(client: SyncClient, device_id: str, school_code: str) -> Offer | None:
    """Refresh the metadata and return the release meant for this device, or None
    (no firmware published, paused, or no version for it). The small files (rules,
    manifest, signature) are fetched through ngclient and verified."""
    fetcher = client.fetcher_factory()
    try:
        updater = client.refreshed_updater(fetcher)
        top = updater._load_targets(Targets.type, Root.type)  # verified by refresh()
        keys = firmware_keys(top)
        if not keys:
            return None
        delegated = top.delegations.roles[FIRMWARE_ROLE]
        role = updater._load_targets(FIRMWARE_ROLE, Targets.type)
        for path in role.targets:
            if not delegated.is_delegated_path(path):
                raise FormatError(f"软件更新的条目 {path} 不属于 firmware 角色，已拒收",
                                  f"target {path} is not the firmware role's to sign; refused")
        if ROLLOUT_TARGET not in role.targets:
            return None
        folder = client.state_dir / OFFER_DIR
        rules = load_rules(_small_target(updater, role.targets[ROLLOUT_TARGET], folder / "rollout.json"))
        version = version_for(device_id, school_code, rules)
        if version is None:
            return None
        prefix = f"{FIRMWARE_ROLE}/{version}/"
        listed = {p[len(prefix):]: t for p, t in role.targets.items() if p.startswith(prefix)}
        if MANIFEST_NAME not in listed or SIGNATURE_NAME not in listed:
            raise FormatError(f"软件版本 {version} 的发布不完整，已拒收", f"release {version} is listed incompletely; refused")
        manifest_data = _small_target(updater, listed.pop(MANIFEST_NAME), folder / f"{version}.manifest.json")
        envelope = _small_target(updater, listed.pop(SIGNATURE_NAME), folder / f"{version}.release.dsse")
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError, ValueError) as exc:
        raise translate(exc) from exc
    finally:
        fetcher.close()
    statement = open_release(envelope, keys, manifest_data)
    check_school(statement, school_code)
    manifest = load_manifest(manifest_data)
    if manifest.version != version:
        raise FormatError(f"发布规则给的版本 {version} 与清单 {manifest.version} 不符，已拒收",
                          f"the rules name {version} but the manifest says {manifest.version}; refused")
    # every file the signed manifest lists is a TUF target with the same length and sha256, and nothing else
    if set(listed) != set(manifest.files) or any(
            listed[rel].length != e["size"] or listed[rel].hashes.get("sha256") != e["sha256"]
            for rel, e in manifest.files.items()):
        raise FormatError(f"软件版本 {version} 的文件与签名的清单不符，已拒收",
                          f"the files of release {version} differ from its signed manifest; refused")
    return Offer(version, rules, manifest_data, envelope, statement, listed, keys)


def _small_target(updater, info: TargetFile, dest: Path) -> bytes:
    """A small target's verified bytes, from the kept copy when it still matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if updater.find_cached_target(info, str(dest)) is None:
        updater.download_target(info, str(dest))
    return dest.read_bytes()


def seed_store(store: BlobStore, release_dir: Path) -> int:
    """Put the files of an installed release folder into the firmware store (hard
    links when on the same disk), so the next fetch moves only what differs.
    Returns how many were added."""
    try:
        manifest = load_manifest((Path(release_dir) / MANIFEST_NAME).read_bytes())
    except (OSError, FormatError):
        return 0
    added = 0
    for rel, entry in manifest.files.items():
        src = Path(release_dir) / safe_relpath(rel)
        if store.has(entry["sha256"]) or not src.is_file():
            continue
        try:
            store.put_file(src, expected_sha256=entry["sha256"])
            added += 1
        except Exception as exc:  # a damaged installed file is simply fetched again
            log.warning("installed firmware file %s not reused: %s", rel, exc)
    return added


def fetch_release(client: SyncClient, offer: Offer, out_dir: Path, basis_dir: Path | None = None) -> FetchReport:
    """Fetch what the store lacks of ``offer``, then write the verified release folder
    ``out_dir`` (manifest, files, release.dsse). A cut transfer raises LinkError and
    keeps its partial files; the next call resumes them. ``basis_dir``: the installed
    release, whose older copy of a changed wheel rsync uses as the basis of a delta."""
    by_sha = {t.hashes["sha256"]: t for t in offer.files.values()}
    missing = sorted(sha for sha in by_sha if not client.store.has(sha))
    client.staging = client.state_dir / STAGING_DIR
    if basis_dir is not None:
        _place_bases(client.staging, offer, set(missing), Path(basis_dir))
    report = client.fetch(Plan(0, {}, [], [], by_sha), missing)
    assemble(client.store, offer, out_dir)
    return report


def _dist_name(rel: str) -> str | None:
    """The distribution a wheel path belongs to (``wheels/flask-3.0.0-py3-none-any.whl`` -> ``flask``)."""
    name = rel.rsplit("/", 1)[-1]
    return name.split("-", 1)[0].lower() if name.endswith(".whl") and "-" in name else None


def _place_bases(staging: Path, offer: Offer, missing: set[str], basis_dir: Path) -> None:
    """For each missing wheel whose distribution the installed release also has, put
    the installed copy where the new file will land: rsync then updates it in place of
    a whole transfer, sending only the blocks that differ (a basis in ``--partial-dir``
    is used far less well). Its time is set to 0 so rsync's quick check never takes it
    for the new file; the result is checked against its sha256 like any other, so a
    poor basis costs bytes, never correctness. A partial file of a cut transfer wins."""
    try:
        installed = load_manifest((basis_dir / MANIFEST_NAME).read_bytes())
    except (OSError, FormatError):
        return
    old = {_dist_name(rel): basis_dir / rel for rel in installed.files if _dist_name(rel)}
    for rel, target in offer.files.items():
        sha = target.hashes["sha256"]
        src = old.get(_dist_name(rel))
        dest = staging / sha[:2] / sha[2:]
        if sha not in missing or src is None or not src.is_file() or dest.exists() \
                or (staging / sha[:2] / PARTIAL_DIR / sha[2:]).exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        os.utime(dest, (0, 0))


def assemble(store: BlobStore, offer: Offer, out_dir: Path) -> Path:
    """Write ``out_dir`` from the store and check it whole (files against the manifest,
    the manifest against the signature); a folder that fails is removed."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, target in offer.files.items():
        dest = tmp / safe_relpath(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = store.path_for(target.hashes["sha256"])
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)
    atomic_write(tmp / MANIFEST_NAME, offer.manifest_data)
    atomic_write(tmp / SIGNATURE_NAME, offer.envelope)
    try:
        verify_files(tmp, load_manifest(offer.manifest_data))
        open_release(offer.envelope, offer.keys, offer.manifest_data)
    except (FormatError, SignatureError):
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def keep_only(store: BlobStore, release_dir: Path) -> int:
    """Drop store files the release in ``release_dir`` does not list (the store holds
    one release: the installed one, the basis of the next update). Returns how many."""
    try:
        wanted = {e["sha256"] for e in json.loads((Path(release_dir) / MANIFEST_NAME).read_bytes())["files"].values()}
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    dropped = 0
    for sha in list(store):
        if sha not in wanted:
            store.remove(sha)
            dropped += 1
    return dropped
