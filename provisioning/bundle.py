"""Provisioning bundles: what a new appliance needs to trust and reach its hub.

A bundle is a folder holding ``bundle.json``, a DSSE envelope signed by the
hub's root key over: the school's code and name, the hub's HTTP and rsync URLs,
the TUF root metadata to pin, the root public key and a one-time enrollment
token with its expiry (the hub keeps only the token's hash; it enrolls one device,
once, before it expires: ``hub_sync.hub.registry``).

Trust on first provisioning: the bundle is the trust anchor. The device checks
that the envelope is signed by the root key inside it and that this same key is
the root key of the TUF root it pins, so a bundle cannot pin one root and be
signed by another. Getting the bundle to the device by a trusted hand (the
county technician's USB stick) is what makes the anchor right.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from hub_sync.formats.envelope import canonical_json, open_envelope, seal
from hub_sync.formats.enrollment import TOKEN_LIFETIME_DAYS, check_school_code, token_hash
from hub_sync.core.errors import Problem
from hub_sync.core.keys import public_key_dict, public_key_from_dict
from securesystemslib.dsse import Envelope
from tuf.api.metadata import Metadata, Root

from provisioning.errors import BundleError

BUNDLE_KIND = "provisioning-bundle"
BUNDLE_FILE = "bundle.json"


@dataclass(frozen=True)
class Bundle:
    school_code: str
    school_name: str
    hub_url: str
    rsync_url: str
    tuf_root: bytes
    token: str
    token_expires_at: float = 0.0  # 0: a bundle made before tokens expired


def make_bundle(hub, school_code: str, school_name: str, hub_url: str, rsync_url: str, out_dir: Path,
                token_days: float = TOKEN_LIFETIME_DAYS) -> Path:
    """Write a bundle signed by ``hub``'s root key into ``out_dir``; record its token,
    which enrolls one device within ``token_days`` (0 or less: expired already, for tests)."""
    from hub_sync.hub.channels import Channels
    from hub_sync.hub.database import transaction
    from hub_sync.hub.publisher import publish, repo_for
    from hub_sync.hub.registry import Registry

    check_school_code(school_code)
    token = secrets.token_urlsafe(24)
    root_signer = hub.root_signer
    repo = repo_for(hub)
    now = time.time()
    expires_at = now + token_days * 86400
    payload = {"school_code": school_code, "school_name": school_name, "hub_url": hub_url.rstrip("/"),
               "rsync_url": rsync_url, "tuf_root": base64.b64encode(repo.root_bytes()).decode(),
               "root_key": public_key_dict(root_signer), "token": token, "token_expires_at": expires_at,
               "created_at": now}
    with transaction(hub.db):
        Channels(hub.db).add_provisioning(token_hash(token), school_code, school_name)
        Registry(hub.db).add_token(token_hash(token), school_code, school_name, expires_at)
    publish(hub, changed=set())  # the new school gets its index right away
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (BUNDLE_FILE + ".tmp")
    tmp.write_bytes(seal(BUNDLE_KIND, canonical_json(payload), root_signer))
    tmp.replace(out_dir / BUNDLE_FILE)
    return out_dir / BUNDLE_FILE


def read_bundle(bundle_dir: Path) -> Bundle:
    """Verify a bundle folder (see the module docstring); return its contents."""
    path = Path(bundle_dir) / BUNDLE_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"找不到配置包 {path}", f"no provisioning bundle at {path}") from exc
    try:
        claimed = json.loads(Envelope.from_dict(json.loads(data)).payload)
        key = public_key_from_dict(claimed["root_key"])
    except (ValueError, KeyError, TypeError, AttributeError, Problem) as exc:
        raise BundleError("配置包格式无效", f"the provisioning bundle is malformed: {exc}") from exc
    try:
        payload, _ = open_envelope(data, BUNDLE_KIND, [key])
    except Problem as exc:
        raise BundleError("配置包签名无效，已拒绝", f"the provisioning bundle's signature is bad; refused ({exc.en})") from exc
    body = json.loads(payload)
    try:
        tuf_root = base64.b64decode(body["tuf_root"])
        root: Root = Metadata[Root].from_bytes(tuf_root).signed
        check_school_code(body["school_code"])
        fields = (body["school_name"], body["hub_url"], body["rsync_url"], body["token"])
    except (ValueError, KeyError, TypeError, Problem) as exc:
        raise BundleError("配置包内容无效", f"the provisioning bundle's content is invalid: {exc}") from exc
    if key.keyid not in root.roles[Root.type].keyids:
        raise BundleError("配置包的签名密钥不是所附信任根的根密钥，已拒绝",
                          "the bundle is not signed by the root key of the trust root it pins; refused")
    return Bundle(body["school_code"], *fields[:3], tuf_root, fields[3], float(body.get("token_expires_at") or 0))
