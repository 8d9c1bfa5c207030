"""Applying a provisioning bundle on the appliance (the minimal path sync needs).

The appliance makes its own Ed25519 device key (``keys/device.pem``, mode 0600;
the private key never leaves the device), pins the bundle's TUF root, records
its school and hub, and writes an enrollment request signed by the device key
(into its data folder and the bundle folder, so it can also travel by USB).
The hub registers the device on first contact, or from the request file with
``school-edge hub enroll``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tuf.api.metadata import Metadata, Root

from edge_agent.config import SETTINGS_FILE
from edge_agent.const import DEVICE_KEY_FILE, HUB_ONLINE_KEY_FILE, PINNED_ROOT_FILE
from hub_sync.core.atomic_file import atomic_write
from hub_sync.formats.enrollment import make_enrollment
from hub_sync.core.keys import generate_key, load_signer

from provisioning.bundle import Bundle, read_bundle
from provisioning.errors import AlreadyProvisionedError

DEVICE_KEY = Path(DEVICE_KEY_FILE)
ENROLLMENT_REQUEST = "enrollment-request.json"


def hub_online_key(tuf_root: bytes) -> dict:
    """The hub's online key as the pinned root lists it (signs acknowledgements too)."""
    root: Root = Metadata[Root].from_bytes(tuf_root).signed
    keyid = root.roles["timestamp"].keyids[0]
    return {"keyid": keyid, **root.keys[keyid].to_dict()}


def _set_hub_url(data_dir: Path, hub_url: str) -> None:
    path = Path(data_dir) / SETTINGS_FILE
    settings = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    settings["hub_url"] = hub_url
    atomic_write(path, json.dumps(settings, ensure_ascii=False, indent=2).encode("utf-8"))
    os.chmod(path, 0o644)


def device_signer(data_dir: Path):
    """The device key, made on first use (0600)."""
    path = Path(data_dir) / DEVICE_KEY
    if path.is_file():
        return load_signer(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    return generate_key(path)


def apply_bundle(appliance, bundle_dir: Path) -> tuple[Bundle, Path]:
    """Verify ``bundle_dir`` and set ``appliance`` up; return (bundle, request path)."""
    bundle = read_bundle(bundle_dir)
    current = appliance.school_code
    if current and current != bundle.school_code and appliance.identity("hub_url"):
        raise AlreadyProvisionedError(f"本设备已配置给学校 {current}，不能改配给 {bundle.school_code}",
                                      f"this appliance is provisioned for school {current}, not {bundle.school_code}")
    signer = device_signer(appliance.data_dir)
    atomic_write(appliance.data_dir / PINNED_ROOT_FILE, bundle.tuf_root)
    atomic_write(appliance.data_dir / HUB_ONLINE_KEY_FILE, json.dumps(hub_online_key(bundle.tuf_root)).encode())
    _set_hub_url(appliance.data_dir, bundle.hub_url)
    appliance.set_identity(school_code=bundle.school_code, school_name=bundle.school_name, hub_url=bundle.hub_url,
                           rsync_url=bundle.rsync_url, device_key_id=signer.public_key.keyid, enrolled="")
    request = make_enrollment(signer, appliance.device_id, bundle.school_code, bundle.school_name, bundle.token)
    atomic_write(appliance.data_dir / ENROLLMENT_REQUEST, request)
    out = Path(bundle_dir) / f"enrollment-request-{appliance.device_id}.json"
    atomic_write(out, request)
    return bundle, out
