"""Software updates reaching the appliance: from the hub in the night window, or
from a stick; verified, then handed to the installer (``firmware.installer``).

Over the link (``update_firmware``, a step of the sync job): the release meant for
this device (``hub_sync.client.firmware_client.check_offer``: signed rollout rules,
this device's id and school), nothing when it is the installed version; inside
``sync_window`` only, its missing files (the installed release's files are kept in
the firmware store, so one changed module moves one module; a cut transfer resumes),
a release folder checked whole against the signed manifest, then the installer.

From a stick (``stage_stick_release``): a signed release folder is checked with the
firmware key of the appliance's trusted TUF metadata, copied into the firmware
store (which makes its files the basis of later network updates too) and installed.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from hub_sync.client.firmware_client import (Offer, assemble, check_offer, fetch_release, keep_only, seed_store,
                                             trusted_firmware_keys)
from hub_sync.client.sync_client import SyncClient
from hub_sync.core.blobstore import BlobStore
from hub_sync.core.errors import Problem, SignatureError
from hub_sync.core.sqlite_db import transaction
from hub_sync.formats.firmware_release import (MANIFEST_NAME, SIGNATURE_NAME, check_school, check_upgrade,
                                               compare_versions, load_manifest, open_release, verify_files)

from edge_agent.const import MIB
from edge_agent.sync.content_sync import client_for, is_provisioned, sync_dir, sync_lock

if TYPE_CHECKING:
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)

STORE_DIR = "firmware-store"      # in the sync folder: the files of the installed release (basis of the next)
RELEASES_DIR = "firmware-releases"  # in the sync folder: verified release folders waiting for the installer


@dataclass
class UpdateResult:
    """What one update attempt did."""

    action: str  # none, current, waiting_for_window, not_newer, failed_before, staged, installed, install_started,
    # rolled_back
    version: str | None = None
    bytes_received: int = 0
    release_size: int = 0
    files_fetched: int = 0
    release_dir: Path | None = None
    install: object = None  # the installer's result
    transport: str = ""  # rsync, or http when the rsync port cannot be reached


def installed_version(appliance: Appliance) -> str:
    from firmware.state import summary

    return summary(appliance.data_dir)["version"]


def firmware_store(appliance: Appliance) -> BlobStore:
    return BlobStore(sync_dir(appliance) / STORE_DIR, reserve_bytes=appliance.config.free_space_reserve_mb * MIB)


def firmware_client(appliance: Appliance) -> SyncClient:
    """The sync client (same TUF metadata, same transports and limits) with the firmware store."""
    client = client_for(appliance)
    client.store = firmware_store(appliance)
    return client


def _record(appliance: Appliance, **values: object) -> None:
    with transaction(appliance.db):
        for key, value in values.items():
            appliance.db["sync_state"].upsert({"key": f"firmware_{key}", "value": str(value)}, pk="key")


def _seed_from_installed(appliance: Appliance, store: BlobStore) -> Path | None:
    """The installed release's files become the fetch's basis (a stick may have
    installed it, so the store may not hold them yet); returns its folder (None for
    the factory install)."""
    from firmware.slots import installed_release_dir

    folder = installed_release_dir(appliance.data_dir)
    if folder is not None:
        seed_store(store, Path(folder))
    return folder


def install_release(appliance: Appliance, release_dir: Path):
    """Hand a verified release folder to the installer (``firmware.installer.install``);
    returns its result. The installer verifies again (signature, files, space)."""
    from firmware.installer import install
    from firmware.state import firmware_root

    keys = trusted_firmware_keys(sync_dir(appliance) / "tuf")
    return install(firmware_root(appliance.data_dir), release_dir, appliance.data_dir, keys,
                   school_code=appliance.school_code)


def failed_before(appliance: Appliance, version: str) -> str | None:
    """Why an install of ``version`` rolled back on this appliance, if it did: the sync
    job does not try it again by itself (each try would stop the service for the trial);
    a newer release, or a technician's ``edge update --retry``, does."""
    from firmware.state import RESULT_ROLLED_BACK, firmware_root, load_state

    for entry in reversed(load_state(firmware_root(appliance.data_dir)).history):
        if entry.get("version") == version and entry.get("result") == RESULT_ROLLED_BACK:
            return str(entry.get("reason") or RESULT_ROLLED_BACK)
    return None


def update_firmware(appliance: Appliance, allow_download: bool = True, install: bool = True,
                    progress: Callable[[str], None] | None = None, retry: bool = False) -> UpdateResult:
    """One update attempt over the link (see the module docstring)."""
    if not is_provisioned(appliance):
        return UpdateResult("none")
    with sync_lock(appliance):
        client = firmware_client(appliance)
        try:
            offer = check_offer(client, appliance.device_id, appliance.school_code)
        except Problem as exc:
            _record(appliance, last_check=f"{time.strftime('%Y-%m-%d %H:%M:%S')} {exc.en}")
            raise
        _record(appliance, last_check=time.strftime("%Y-%m-%d %H:%M:%S"), offered=offer.version if offer else "")
        if offer is None:
            return UpdateResult("none")
        current = installed_version(appliance)
        order = compare_versions(offer.version, current)
        if order == 0:
            return UpdateResult("current", offer.version, release_size=offer.size)
        if order < 0 and not offer.statement.get("downgrade"):
            # a device ahead of the rules (it took a stage the county then replaced) stays where it is
            return UpdateResult("not_newer", offer.version, release_size=offer.size)
        check_upgrade(current, load_manifest(offer.manifest_data), bool(offer.statement.get("downgrade")))
        if not retry and failed_before(appliance, offer.version):
            return UpdateResult("failed_before", offer.version, release_size=offer.size)
        if not allow_download:
            _record(appliance, waiting=offer.version)
            return UpdateResult("waiting_for_window", offer.version, release_size=offer.size)
        basis = _seed_from_installed(appliance, client.store)
        out = sync_dir(appliance) / RELEASES_DIR / offer.version
        if progress:
            progress(f"下载软件 fetching release {offer.version}")
        report = fetch_release(client, offer, out, basis)
        _record(appliance, waiting="", fetched=offer.version, fetched_bytes=report.bytes_received)
        log.info("firmware %s fetched: %d files, %d bytes moved of %d", offer.version, report.files,
                 report.bytes_received, offer.size)
    result = UpdateResult("staged", offer.version, report.bytes_received, offer.size, report.files, out,
                          transport=report.transport)
    if install:
        _install(appliance, result)
    return result


# what the installer's result means for the caller: committed, handed off to its own process
# (inside the running service), or rolled back by itself (the reason is in the firmware state)
_INSTALL_ACTIONS = {"committed": "installed", "started": "install_started", "rolled_back": "rolled_back"}


def _install(appliance: Appliance, result: UpdateResult) -> None:
    result.install = install_release(appliance, result.release_dir)
    result.action = _INSTALL_ACTIONS.get(getattr(result.install, "result", ""), "installed")
    finish(appliance, result.release_dir)


def finish(appliance: Appliance, release_dir: Path) -> None:
    """After the installer: the store keeps only the running release's files (the
    basis of the next update) and the assembled folder goes."""
    from firmware.state import summary

    if summary(appliance.data_dir)["version"] == load_manifest((release_dir / MANIFEST_NAME).read_bytes()).version:
        keep_only(firmware_store(appliance), release_dir)
    shutil.rmtree(release_dir, ignore_errors=True)


def verify_stick_release(appliance: Appliance, folder: Path) -> Offer:
    """Check a signed release folder from a stick: the signature by the firmware key
    the appliance trusts, the manifest against it, every file against the manifest,
    this school, and that it may replace the installed version. Nothing is changed."""
    keys = trusted_firmware_keys(sync_dir(appliance) / "tuf")
    if not keys:
        raise SignatureError("本机还没有县平台的软件签名密钥：请先同步一次或导入内容包",
                             "this appliance has no trusted firmware key yet; sync once or import a content pack first")
    try:
        manifest_data = (folder / MANIFEST_NAME).read_bytes()
        envelope = (folder / SIGNATURE_NAME).read_bytes()
    except OSError as exc:
        raise SignatureError(f"{folder} 不是签名的软件发布（缺少 {exc.filename}）",
                             f"{folder} is not a signed release (missing {Path(str(exc.filename)).name})") from exc
    statement = open_release(envelope, keys, manifest_data)
    check_school(statement, appliance.school_code)
    manifest = load_manifest(manifest_data)
    check_upgrade(installed_version(appliance), manifest, bool(statement.get("downgrade")))
    verify_files(folder, manifest)
    from tuf.api.metadata import TargetFile

    files = {rel: TargetFile(length=e["size"], hashes={"sha256": e["sha256"]}, path=rel)
             for rel, e in manifest.files.items()}
    return Offer(manifest.version, None, manifest_data, envelope, statement, files, keys)


def stage_stick_release(appliance: Appliance, folder: Path, install: bool = True) -> UpdateResult:
    """A release carried on a stick: verified, copied into the firmware store, assembled
    as a local release folder (the stick may be pulled) and installed."""
    offer = verify_stick_release(appliance, Path(folder))
    store = firmware_store(appliance)
    store.check_space(offer.size)
    for rel, target in offer.files.items():
        store.put_file(Path(folder) / rel, expected_sha256=target.hashes["sha256"])
    out = assemble(store, offer, sync_dir(appliance) / RELEASES_DIR / offer.version)
    _record(appliance, fetched=offer.version, fetched_bytes=0)
    result = UpdateResult("staged", offer.version, 0, offer.size, 0, out)
    if install:
        _install(appliance, result)
    return result
