"""Sneakernet at the county hub: ``school-edge hub import-usb DIR``.

For every school folder on the stick (one stick may carry several schools):

1. enrollment requests written by ``provision apply`` (``bundle/enrollment-request-*.json``)
   and carried in exports are registered, exactly as ``hub enroll`` does;
2. the newest complete export of each device is checked (COMPLETE marker, the
   device-signed manifest, every file's sha256), its batches opened with the hub's
   keys (``hub_box_opener``: the online key, or a retired one) and ingested by
   ``hub_sync.hub.ingest`` exactly as over the network (idempotent: the same export
   twice stores nothing new), offered teacher uploads stored hash-checked and
   recorded for review;
3. the signed acknowledgements go to ``<school>/down/<device_id>/<n>/`` (marker last),
   and a fresh content pack for the school to ``<school>/content/``;
4. the county's messages for each enrolled device of the school (``hub_sync.hub.downlink``:
   notices, roster changes, transfers, share status), after the last one the device
   reported applied in a signed export, go to ``<school>/down/<device_id>/downlink.json``:
   the same signed ``downlink`` envelope a poll gets over the network, every payload
   sealed to that device's key.

A half-written export (no marker) is ignored with a message; a stick pulled out
half-way leaves the hub consistent (one transaction per batch) and the next run
carries on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from hub_sync.formats.envelope import open_envelope
from hub_sync.core.errors import FormatError, Problem
from hub_sync.formats.downlink import DOWNLINK_KIND
from hub_sync.formats.usage_ack import seal_ack
from hub_sync.hub.downlink import Downlink, answer_bytes, hub_box_opener
from hub_sync.hub.registry import Registry
from hub_sync.hub.usb_offers import record_offer

from provisioning import stick
from provisioning.sneakernet import DOWN, DOWNLINK_FILE, EXPORT_KIND, MANIFEST, UP, _payload, _sha
from provisioning.errors import IncompleteError, NothingToDoError

def hub_import_usb(hub, stick_path: Path, packs: bool = True, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Import every school's exports from the stick; write acknowledgements and packs."""
    say = progress or (lambda line: None)
    schools = stick.schools_on(Path(stick_path))
    if not schools:
        raise NothingToDoError("U盘上没有 school-edge 文件夹，没有可导入的内容",
                               "no school-edge folder on the stick; nothing to import")
    open_box = hub_box_opener(hub)
    reports = []
    for code in schools:
        folder = stick.school_dir(Path(stick_path), code)
        report = {"school_code": code, "enrolled": [], "devices": [], "problems": [], "pack": None}
        for request in sorted((folder / "bundle").glob("enrollment-request-*.json")):
            _enroll(hub, request.read_bytes(), report)
        up = folder / UP
        for device_dir in sorted(up.iterdir()) if up.is_dir() else []:
            try:
                stick.check_name(device_dir.name)
                if device_dir.is_symlink() or not device_dir.is_dir():
                    continue
                with stick.stick_io(stick_path):
                    report["devices"].append(_import_device(hub, code, device_dir, folder / DOWN / device_dir.name,
                                                            open_box, say, report))
            except Problem as exc:
                report["problems"].append(f"{device_dir.name}: {exc}")
        try:
            with stick.stick_io(stick_path):
                report["messages"] = _write_downlinks(hub, code, folder / DOWN)
        except Problem as exc:
            report["problems"].append(str(exc))
        if packs:
            try:
                with stick.stick_io(stick_path):
                    pack = _write_pack(hub, code, folder, say)
                report["pack"] = pack
            except Problem as exc:
                report["problems"].append(str(exc))
        reports.append(report)
    return reports


def _enroll(hub, data: bytes, report: dict) -> None:
    from hub_sync.hub.repo_api import enroll

    try:
        result = enroll(hub, data)
        if result["device_id"] not in report["enrolled"]:
            report["enrolled"].append(result["device_id"])
    except Problem as exc:
        report["problems"].append(f"登记请求 enrollment request: {exc}")


def _import_device(hub, code: str, device_dir: Path, down: Path, open_box, say, report: dict) -> dict:
    from hub_sync.hub.ingest import UsageIngest
    from hub_sync.hub.registry import Registry

    exports = sorted(p for p in device_dir.iterdir() if p.is_dir() and not p.is_symlink())
    complete = []
    for export in exports:
        if stick.is_complete(export):
            complete.append(export)
        else:
            msg = (f"设备 {device_dir.name} 的导出 {export.name} 没有写完（U盘可能被中途拔出），已忽略；请在学校重新导出"
                   f" (export {export.name} of {device_dir.name} is half-written; ignored: export again at the school)")
            report["problems"].append(msg)
    result = {"device_id": device_dir.name, "export": None, "batches": 0, "stored": 0, "uploads": 0}
    if not complete:
        return result
    export = complete[-1]
    marker = stick.read_marker(export)
    sizes = {e["path"]: e for e in marker["files"]}
    if (export / "enrollment-request.json").is_file():
        _enroll(hub, stick.safe_join(export, "enrollment-request.json").read_bytes(), report)
    device = Registry(hub.db).active(device_dir.name)
    payload, _ = open_envelope(stick.safe_join(export, MANIFEST).read_bytes(), EXPORT_KIND, [device.public_key])
    manifest = json.loads(payload)
    if manifest.get("device_id") != device.device_id or manifest.get("school_code") != code or device.school_code != code:
        raise FormatError(f"导出 {export.name} 不属于学校 {code} 的设备 {device.device_id}，已拒收",
                          f"export {export.name} does not belong to device {device.device_id} of school {code}; refused")
    Registry(hub.db).touch(device)  # a verified export is contact too (``hub devices``: last contact)
    files = {}
    for entry in manifest["files"]:
        data = stick.safe_join(export, entry["path"]).read_bytes() if not entry["path"].startswith("upload-") else None
        if data is not None and (_sha(data) != entry["sha256"] or sizes.get(entry["path"], {}).get("size") != len(data)):
            raise IncompleteError(f"导出文件 {entry['path']} 已损坏或被改动，已拒收",
                                  f"export file {entry['path']} is damaged or was changed; refused")
        files[entry["path"]] = (entry, data)
    uploads = manifest.get("uploads", [])
    for upload in uploads:  # hash-checked into the store first: a bad file refuses the export before any ingest
        for f in upload.get("files", []):
            entry, _ = files[f"upload-{f['sha256']}"]
            hub.store.put_file(stick.safe_join(export, entry["path"]), expected_sha256=f["sha256"])
    ingest, signer, acks = UsageIngest(hub.db), hub.online_signer, []
    for batch in manifest["batches"]:
        envelope = open_box(files[batch["file"]][1])
        ack = ingest.ingest(envelope)
        acks.append(seal_ack(ack, signer))
        result["batches"] += 1
        result["stored"] += ack.stored
    downlink = Downlink(hub.db)
    downlink.scan(device, open_box)  # offered uploads and transferred spaces in these events
    if isinstance(manifest.get("downlink_applied"), int):
        downlink.reported(device.device_id, manifest["downlink_applied"])
    for upload in uploads:
        record_offer(hub.db, device.device_id, code, upload)
        result["uploads"] += 1
    _write_acks(down, export.name, acks)
    result["export"] = export.name
    if result["batches"] and not result["stored"]:
        say(f"  {device.device_id}: 导出 {export.name} 已导入过，没有新数据 (already imported; nothing new stored)")
    else:
        say(f"  {device.device_id}: {result['batches']} batches, {result['stored']} new events, {result['uploads']} uploads")
    return result


def _write_downlinks(hub, code: str, down: Path) -> int:
    """Write each enrolled device's waiting messages (or remove a stale file); returns messages written."""
    from hub_sync.formats.envelope import seal

    downlink, signer, written = Downlink(hub.db), None, 0
    for device_id in [d["device_id"] for d in Registry(hub.db).all() if d["school_code"] == code and d["status"] == "active"]:
        target = down / stick.check_name(device_id) / DOWNLINK_FILE
        answer = downlink.answer(Registry(hub.db).get(device_id), downlink.reported_seq(device_id), None, None)
        if answer is None:
            if target.is_file():
                target.unlink()
            continue
        signer = signer or hub.online_signer
        stick.atomic_write(target, seal(DOWNLINK_KIND, answer_bytes(answer), signer))
        written += len(answer["messages"])
    return written


def _write_acks(down: Path, export_name: str, acks: list[bytes]) -> None:
    dest = down / export_name
    stick.remove_tree(dest)
    entries = []
    for i, body in enumerate(acks, 1):
        name = f"ack-{i:04d}.json"
        stick.atomic_write(dest / name, body)
        entries.append({"path": name, "size": len(body), "sha256": _sha(body)})
    stick.write_marker(dest, entries, kind="usage-acks")
    for old in down.iterdir():
        if old.name not in (export_name, DOWNLINK_FILE):
            stick.remove_tree(old)


def _write_pack(hub, code: str, folder: Path, say) -> dict | None:
    from hub_sync.hub.channels import Channels

    from provisioning.content_pack import write_pack

    if code not in Channels(hub.db).schools():
        return None
    last = [0]

    def show(done: int, total: int) -> None:
        if total and (done - last[0] > total // 10 or done == total):
            last[0] = done
            say(f"  资源包 content pack {code}: {done * 100 // total}%")

    rep = write_pack(hub, code, folder, show)
    say(f"  资源包 content pack {code}: snapshot {rep.snapshot_version}, {rep.files} files")
    return {"snapshot_version": rep.snapshot_version, "files": rep.files, "bytes_copied": rep.bytes_copied}


__all__ = ["hub_import_usb", "_payload"]
