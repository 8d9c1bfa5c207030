"""Sneakernet on the appliance: usage out to a stick, acknowledgements and content in.

``export_usb`` writes, for this device, ``<school>/up/<device_id>/<n>/``:

    batch-<first>-<last>.sealed   each a signed usage batch (the same DSSE envelope the
                                  network sends), sealed to the hub's online key (hub_sync.formats.sealed_box)
    upload-<sha256>               files of teacher resources offered to the county
    enrollment-request.json       while the hub has not confirmed the device yet
    manifest.json                 DSSE signed by the device key: every file's sha256,
                                  the batches' ranges, the uploads' metadata
    COMPLETE.json                 written last (stick.write_marker)

Every unacknowledged event is exported each time (batches are deterministic, so
the same events give the same bytes and the hub stores them once); the newest
complete export supersedes older ones, which are removed. ``import_usb`` applies
the acknowledgements the hub wrote to ``<school>/down/<device_id>/`` (each
verified against the hub's online key and a batch this device exported, then
pruned by ``edge_agent.sync.usage_sync.apply_ack``), the county's messages in
``<school>/down/<device_id>/downlink.json`` (verified and applied exactly as over the
network by ``edge_agent.sync.downlink``; the manifest tells the hub the last one applied)
and a newer content pack, and installs a signed software release carried in
``school-edge/firmware/<version>/`` (``provisioning.firmware_stick``). The batches exported are remembered in ``usb_exports`` and
``usb_state``, tables of ``edge_agent.sync.schema`` the appliance creates when it opens.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Callable

from edge_agent.const import DEVICE_KEY_FILE
from hub_sync.formats.envelope import canonical_json, seal
from hub_sync.core.errors import Problem
from hub_sync.core.sqlite_db import transaction
from hub_sync.formats.sealed_box import seal_to

from provisioning import stick
from provisioning.content_pack import pack_folder, plan_from_pack, read_pack_marker
from provisioning.firmware_stick import apply_firmware, release_folders
from provisioning.errors import IncompleteError, NothingToDoError, UsbError, WrongSchoolError
from provisioning.verified_copy import import_verified

EXPORT_KIND = "usb-export"
MANIFEST = "manifest.json"
DOWNLINK_FILE = "downlink.json"
UP, DOWN = "up", "down"

def _state(db, key: str, default: str = "") -> str:
    row = db.execute("select value from usb_state where key = ?", [key]).fetchone()
    return row[0] if row else default


def _device_folder(appliance, stick_path: Path, kind: str) -> Path:
    if not appliance.identity("hub_url"):
        raise UsbError("设备尚未开通，请先用开通U盘运行 school-edge provision apply",
                       "the appliance is not provisioned; apply a provisioning stick first (school-edge provision apply)")
    return stick.school_dir(stick_path, appliance.school_code) / kind / stick.check_name(appliance.device_id)


def _offered_uploads(appliance) -> list[dict]:
    """Teacher resources offered to the county and not yet answered, with their files."""
    try:
        rows = appliance.db.execute(
            "select r.id, r.title, r.kind, r.stage, r.grade, r.subject, r.edition, r.chapter, r.description"
            " from teacher_resources t join resources r on r.id = t.resource_id where t.share_status = 'offered'").fetchall()
    except sqlite3.OperationalError:  # no learning-space tables on this device
        return []
    out = []
    for row in rows:
        meta = dict(zip(("resource_id", "title", "kind", "stage", "grade", "subject", "edition", "chapter", "description"), row))
        meta["files"] = [{"path": p, "sha256": s, "size": n, "mime": m} for p, s, n, m in appliance.db.execute(
            "select path, sha256, size, mime from resource_files where resource_id = ?", [row[0]])]
        out.append(meta)
    return out


def export_usb(appliance, stick_path: Path, progress: Callable[[str], None] | None = None,
               max_events: int | None = None) -> dict:
    """Write this device's unacknowledged usage, offered uploads and (until enrolled)
    its enrollment request onto the stick; room is checked before writing."""
    from edge_agent.sync.hub_key import load_hub_key
    from edge_agent.sync.usage_sync import chain_hash, build_next_batch
    from hub_sync.core.keys import load_signer

    folder = _device_folder(appliance, stick_path, UP)
    hub_key = load_hub_key(appliance.data_dir)  # the key it follows through rotations; boxes for the hub use it too
    after = appliance.journal.acknowledged()
    prev = chain_hash(appliance, after)
    batches = []
    limit = {"max_events": max_events} if max_events else {}  # default: the network's batch size
    while (batch := build_next_batch(appliance, after, prev, **limit)) is not None:
        batches.append(batch)
        after, prev = batch.last_seq, batch.hash
    uploads = _offered_uploads(appliance)
    enrollment = appliance.data_dir / "enrollment-request.json"
    send_enrollment = enrollment.is_file() and appliance.identity("enrolled") != "yes"
    sealed = {f"batch-{b.first_seq:012d}-{b.last_seq:012d}.sealed": seal_to(hub_key, b.envelope) for b in batches}
    files = {f["sha256"]: f["size"] for u in uploads for f in u["files"]}
    needed = sum(map(len, sealed.values())) + sum(files.values()) + 64 * 1024
    if not batches and not uploads and not send_enrollment:
        return {"school_code": appliance.school_code, "device_id": appliance.device_id, "batches": 0, "events": 0,
                "uploads": 0, "folder": None}
    stick.check_room(Path(stick_path), needed, "使用数据 usage export")
    export_no = int(_state(appliance.db, "export_no", "0")) + 1
    dest = folder / f"{export_no:06d}"
    stick.remove_tree(dest)
    entries = []
    for name, data in sealed.items():
        stick.atomic_write(dest / name, data)
        entries.append({"path": name, "size": len(data), "sha256": _sha(data)})
    for sha, size in files.items():
        stick.atomic_copy(appliance.store.path_for(sha), dest / f"upload-{sha}")
        entries.append({"path": f"upload-{sha}", "size": size, "sha256": sha})
    if send_enrollment:
        data = enrollment.read_bytes()
        stick.atomic_write(dest / "enrollment-request.json", data)
        entries.append({"path": "enrollment-request.json", "size": len(data), "sha256": _sha(data)})
    from edge_agent.sync.downlink import cursor as downlink_cursor

    manifest = {"device_id": appliance.device_id, "school_code": appliance.school_code, "export_no": export_no,
                "files": entries, "uploads": uploads, "created_at": time.time(),
                "downlink_applied": downlink_cursor(appliance.db),
                "batches": [{"file": n, "hash": b.hash, "first_seq": b.first_seq, "last_seq": b.last_seq}
                            for n, b in zip(sealed, batches)]}
    manifest_bytes = seal(EXPORT_KIND, canonical_json(manifest), load_signer(appliance.data_dir / DEVICE_KEY_FILE))
    stick.atomic_write(dest / MANIFEST, manifest_bytes)
    stick.write_marker(dest, entries + [{"path": MANIFEST, "size": len(manifest_bytes), "sha256": _sha(manifest_bytes)}],
                       kind=EXPORT_KIND, device_id=appliance.device_id)
    with transaction(appliance.db):
        appliance.db["usb_exports"].insert_all(
            ({"batch_hash": b.hash, "first_seq": b.first_seq, "last_seq": b.last_seq, "prev_hash": b.prev_hash,
              "export_no": export_no, "exported_at": time.time()} for b in batches), replace=True)
        appliance.db["usb_state"].upsert({"key": "export_no", "value": str(export_no)}, pk="key")
    for old in folder.iterdir():  # the new export supersedes every older one
        if old.name != dest.name:
            stick.remove_tree(old)
    if progress:
        progress(f"已导出 exported {len(batches)} batches, {len(uploads)} uploads to {dest}")
    return {"school_code": appliance.school_code, "device_id": appliance.device_id, "batches": len(batches),
            "events": sum(b.last_seq - b.first_seq + 1 for b in batches), "uploads": len(uploads), "folder": str(dest)}


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# -- back on site: acknowledgements and content ------------------------------------------
def _apply_acks(appliance, stick_path: Path) -> dict:
    from edge_agent.sync.hub_key import load_hub_key
    from edge_agent.sync.usage_sync import SignedBatch, apply_ack, verify_ack

    folder = _device_folder(appliance, stick_path, DOWN)
    result = {"acks": 0, "pruned": 0, "acked_seq": appliance.journal.acknowledged(), "ignored": []}
    if not folder.is_dir():
        return result
    hub_key = load_hub_key(appliance.data_dir)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
        try:
            marker = stick.read_marker(sub, "确认 acknowledgements")
        except IncompleteError as exc:
            result["ignored"].append(str(exc))
            continue
        acks = []
        for entry in marker["files"]:
            body = stick.safe_join(sub, entry["path"]).read_bytes()
            batch_hash = json.loads(_payload(body)).get("batch_hash", "")
            row = appliance.db.execute("select first_seq, last_seq, prev_hash from usb_exports where batch_hash = ?",
                                       [batch_hash]).fetchone()
            if row is None:
                result["ignored"].append(f"确认 {entry['path']} 不对应本机导出的数据 (acknowledgement for a batch this device did not export)")
                continue
            acks.append(verify_ack(body, hub_key, appliance.device_id, SignedBatch(b"", batch_hash, row[0], row[1], row[2])))
        for ack in sorted(acks, key=lambda a: a.acked_seq):
            result["pruned"] += apply_ack(appliance, ack)
            result["acks"] += 1
        if acks and appliance.identity("enrolled") != "yes":
            appliance.set_identity(enrolled="yes")  # a signed acknowledgement proves the hub knows this device
    result["acked_seq"] = appliance.journal.acknowledged()
    return result


def _apply_downlink(appliance, stick_path: Path) -> dict:
    """The county's messages the hub wrote for this device, applied as over the network."""
    from edge_agent.sync.downlink import apply_answer, open_answer
    from edge_agent.sync.hub_key import load_hub_key

    path = _device_folder(appliance, stick_path, DOWN) / DOWNLINK_FILE
    if not path.is_file() or path.is_symlink():
        return {"applied": 0, "failed": 0, "skipped": 0}
    answer = open_answer(path.read_bytes(), load_hub_key(appliance.data_dir), appliance.device_id, appliance.school_code)
    done = apply_answer(appliance, answer)
    return {"applied": done.applied, "failed": done.failed, "skipped": done.skipped, "failures": done.failures}


def _payload(envelope: bytes) -> bytes:
    import base64

    try:
        return base64.b64decode(json.loads(envelope)["payload"])
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompleteError("确认文件已损坏", f"an acknowledgement file is damaged: {exc}") from exc


def _apply_pack(appliance, school_folder: Path, progress) -> dict | None:
    from edge_agent.sync.content_sync import apply_plan, client_for, collect_garbage, sync_lock, to_resources

    try:
        marker = read_pack_marker(school_folder)
    except IncompleteError as exc:
        if pack_folder(school_folder).exists():
            return {"ignored": str(exc)}
        return None
    current = int((appliance.db.execute("select value from sync_state where key = 'catalogue_version'").fetchone() or [0])[0])
    if int(marker.get("snapshot_version", 0)) <= current:
        return {"resources": 0, "skipped": "资源包不比本机的新 (the pack is not newer than this device's catalogue)"}
    with sync_lock(appliance):
        plan, wanted = plan_from_pack(client_for(appliance), pack_folder(school_folder))
        resources = to_resources(plan)
        with transaction(appliance.db):
            appliance.db["sync_blobs"].insert_all(({"sha256": w.sha256} for w in wanted), ignore=True)
        copied = import_verified(appliance.store, wanted, progress)
        apply_plan(appliance, plan, resources)
        removed = collect_garbage(appliance)
    return {"resources": len(resources), "files": len(wanted), "bytes_copied": copied, "removed": removed,
            "snapshot_version": plan.snapshot_version}


def import_usb(appliance, stick_path: Path, progress: Callable[[int], None] | None = None) -> dict:
    """Apply what the hub wrote for this device: acknowledgements (then prune), content."""
    if not appliance.identity("hub_url"):
        raise UsbError("设备尚未开通；如果这是开通U盘，请运行 school-edge provision apply",
                       "the appliance is not provisioned; for a provisioning stick run 'school-edge provision apply'")
    school_folder = stick.school_dir(stick_path, appliance.school_code)
    if not school_folder.is_dir() and release_folders(Path(stick_path)):  # a stick with only a software release
        return {"school_code": appliance.school_code, "device_id": appliance.device_id,
                "firmware": apply_firmware(appliance, Path(stick_path))}
    if not school_folder.is_dir():
        others = stick.schools_on(Path(stick_path))
        if not others:
            raise NothingToDoError("U盘上没有 school-edge 文件夹", "no school-edge folder on the stick")
        raise WrongSchoolError(f"U盘上没有本校 {appliance.school_code} 的数据（只有：{'、'.join(others)}）",
                               f"the stick holds nothing for school {appliance.school_code} (only: {', '.join(others)})")
    report = {"school_code": appliance.school_code, "device_id": appliance.device_id}
    report["usage"] = _apply_acks(appliance, stick_path)
    report["messages"] = _apply_downlink(appliance, stick_path)
    report["content"] = _apply_pack(appliance, school_folder, progress)
    report["firmware"] = apply_firmware(appliance, Path(stick_path))  # after the pack: its metadata may carry the key
    acked = appliance.journal.acknowledged()
    up = school_folder / UP / appliance.device_id
    if up.is_dir():  # exports the hub has fully acknowledged are no longer needed on the stick
        for export in list(up.iterdir()):
            try:
                last = max((b["last_seq"] for b in _manifest_batches(export)), default=None)
            except (Problem, OSError, ValueError, KeyError):
                continue
            if last is not None and last <= acked:
                stick.remove_tree(export)
    return report


def _manifest_batches(export: Path) -> list[dict]:
    return json.loads(_payload((export / MANIFEST).read_bytes()))["batches"]
