"""Provisioning by USB stick: make it at the county, verify, plan and apply it on site.

What a stick holds for one school (``stick.school_dir``)::

    bundle/bundle.json      the signed bundle (provisioning.bundle: identity, hub URLs,
                            pinned TUF root, root key, one-time enrollment token)
    stick.json              DSSE signed by the same root key ("usb-stick"): the hash of
                            bundle.json (so the two cannot be mixed), teaching points,
                            device settings, the sealed roster's hash, created/expires
                            times (what devices seal for the hub goes to its online key,
                            pinned with the TUF root: hub_sync.formats.sealed_box)
    roster.sealed           the roster, passphrase-encrypted (roster_seal)
    content/                the initial content pack (content_pack)

``stick.json`` is written last, so a stick pulled out while being made has none
and is refused as half-written. On the device ``apply_stick`` verifies
everything first (signatures, expiry, school, the roster and its problems, the
content pack through TUF), copies the content files (invisible until
catalogued), then applies identity, trust, accounts and classes and the catalogue
in one database transaction. Applying the same stick again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from hub_sync.formats.envelope import canonical_json, open_envelope, seal
from hub_sync.core.errors import Problem, SignatureError
from hub_sync.core.keys import public_key_from_dict

from provisioning import stick
from provisioning.bundle import BUNDLE_FILE, Bundle, make_bundle, read_bundle
from provisioning.content_pack import PACK_DIR, pack_contents, write_pack
from provisioning.errors import BundleError
from provisioning.roster_seal import open_roster, seal_roster
from provisioning.errors import IncompleteError, NothingToDoError, RosterError, WrongSchoolError

STICK_KIND = "usb-stick"
STICK_FILE = "stick.json"
ROSTER_FILE = "roster.sealed"
BUNDLE_DIR = "bundle"
DEFAULT_VALID_DAYS = 30


@dataclass
class StickInfo:
    """A verified provisioning stick for one school."""

    folder: Path
    bundle: Bundle
    extras: dict
    digest: str  # what "the same stick" means for idempotence

    @property
    def school_code(self) -> str:
        return self.bundle.school_code


@dataclass
class MakeReport:
    school_code: str
    folder: Path
    bytes_written: int = 0
    content_files: int = 0
    roster: bool = False
    notes: list[str] = field(default_factory=list)


# -- at the county --------------------------------------------------------------
def make_stick(hub, stick_path: Path, school_code: str, school_name: str, hub_url: str, rsync_url: str, *,
               roster: bytes | None = None, passphrase: str | None = None, teaching_points: list[str] | None = None,
               timezone_name: str = "Asia/Shanghai", sync_window: str = "22:00-06:00", bwlimit_kbps: int = 1500,
               content: bool = True, valid_days: int = DEFAULT_VALID_DAYS, token_days: float | None = None,
               progress: Callable[[int, int], None] | None = None) -> MakeReport:
    """Write a provisioning stick for one school; the stick's room is checked first.
    Its bundle's enrollment token expires with the stick unless ``token_days`` says otherwise."""
    folder = stick.school_dir(stick_path, school_code)
    sealed = None
    if roster is not None:
        if not passphrase:
            raise RosterError("带花名册的U盘需要口令（--passphrase-file）", "a stick with a roster needs a passphrase (--passphrase-file)")
        sealed = seal_roster(roster, passphrase, school_code)
    needed = 256 * 1024 + (len(sealed) if sealed else 0)
    if content:
        meta, blobs = pack_contents(hub, school_code)
        needed += sum(blobs.values()) + sum(p.stat().st_size for p in meta)
    stick.check_room(Path(stick_path), needed, f"学校 {school_code} school {school_code}")
    (folder / STICK_FILE).unlink(missing_ok=True)  # incomplete until the end
    bundle_path = make_bundle(hub, school_code, school_name, hub_url, rsync_url, folder / BUNDLE_DIR,
                              valid_days if token_days is None else token_days)
    report = MakeReport(school_code, folder, roster=sealed is not None)
    if sealed is not None:
        stick.atomic_write(folder / ROSTER_FILE, sealed)
    else:
        (folder / ROSTER_FILE).unlink(missing_ok=True)
    if content:
        pack = write_pack(hub, school_code, folder, progress)
        report.content_files, report.bytes_written = pack.files, pack.bytes_copied
    else:
        stick.remove_tree(folder / PACK_DIR)
    now = time.time()
    extras = {
        "school_code": school_code, "bundle_sha256": _sha(bundle_path.read_bytes()),
        "teaching_points": list(teaching_points or []),
        "settings": {"timezone": timezone_name, "sync_window": sync_window, "sync_bwlimit_kbps": int(bwlimit_kbps)},
        "roster": {"sha256": _sha(sealed), "size": len(sealed)} if sealed else None,
        "created_at": now, "expires_at": now + valid_days * 86400,
    }
    stick.atomic_write(folder / STICK_FILE, seal(STICK_KIND, canonical_json(extras), hub.root_signer))
    return report


# -- on the device: verifying ------------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def choose_school(stick_path: Path, current_school: str = "", wanted: str | None = None) -> Path:
    """The school folder on the stick that is for this device, or a clear refusal."""
    codes = stick.schools_on(stick_path)
    provisioning = [c for c in codes if (stick.school_dir(stick_path, c) / STICK_FILE).exists()
                    or (stick.school_dir(stick_path, c) / BUNDLE_DIR).exists()]
    target = wanted or current_school
    if target:
        if target not in provisioning:
            raise WrongSchoolError(
                f"U盘上没有学校 {target} 的配置（U盘上有：{'、'.join(provisioning) or '无'}）。请用本校的U盘",
                f"the stick holds no provisioning for school {target} (it has: {', '.join(provisioning) or 'none'}); "
                "use this school's stick")
        return stick.school_dir(stick_path, target)
    if not provisioning:
        raise NothingToDoError("U盘上没有设备配置（school-edge 文件夹）", "no provisioning on the stick (no school-edge folder)")
    if len(provisioning) > 1:
        raise WrongSchoolError(f"U盘上有多所学校的配置：{'、'.join(provisioning)}，请用 --school 指定",
                               f"the stick holds several schools ({', '.join(provisioning)}); choose one with --school")
    return stick.school_dir(stick_path, provisioning[0])


def verify_stick(folder: Path, pinned_root: bytes | None = None, now: float | None = None) -> StickInfo:
    """Check a school folder: bundle and stick.json signatures, binding, school, expiry.

    ``pinned_root`` (a device that already trusts a hub) must have the same root key.
    """
    stick_file = folder / STICK_FILE
    if not stick_file.is_file() or stick_file.is_symlink():
        raise IncompleteError("U盘上的配置没有写完（缺少 stick.json），请在县里重新制作",
                              "the provisioning on the stick is half-written (no stick.json); make the stick again")
    bundle = read_bundle(folder / BUNDLE_DIR)
    root_key = _root_key(bundle.tuf_root)
    if pinned_root is not None and _root_key(pinned_root).keyid != root_key.keyid:
        raise SignatureError("U盘由未知的密钥签名（不是本设备信任的县平台），已拒绝",
                             "the stick is signed by an unknown key (not the hub this device trusts); refused")
    data = stick_file.read_bytes()
    try:
        payload, _ = open_envelope(data, STICK_KIND, [root_key])
    except Problem as exc:
        raise BundleError("U盘配置被改动或签名无效，已拒绝", f"the stick's settings were changed or badly signed; refused ({exc.en})") from exc
    extras = json.loads(payload)
    bundle_bytes = (folder / BUNDLE_DIR / BUNDLE_FILE).read_bytes()
    if extras.get("bundle_sha256") != _sha(bundle_bytes) or extras.get("school_code") != bundle.school_code \
            or folder.name != bundle.school_code:
        raise BundleError("U盘上的配置文件互不匹配（可能被调换），已拒绝",
                          "the files on the stick do not belong together (swapped?); refused")
    now = time.time() if now is None else now
    if float(extras.get("expires_at", 0)) < now:
        expired = datetime.fromtimestamp(float(extras.get("expires_at", 0)), timezone.utc).strftime("%Y-%m-%d")
        today = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d")
        raise BundleError(f"U盘配置已于 {expired} 过期（本机日期 {today}），请在县里重新制作；如本机日期不对，请先校正",
                          f"the stick expired on {expired} (this device's date is {today}); make a new one at the county, "
                          "or correct the device's date if it is wrong")
    digest = _sha(bundle_bytes + data + _marker_bytes(folder))
    return StickInfo(folder, bundle, extras, digest)


def _root_key(tuf_root: bytes):
    from tuf.api.metadata import Metadata, Root

    root: Root = Metadata[Root].from_bytes(tuf_root).signed
    keyid = root.roles[Root.type].keyids[0]
    return public_key_from_dict({"keyid": keyid, **root.keys[keyid].to_dict()})


def _marker_bytes(folder: Path) -> bytes:
    marker = folder / PACK_DIR / stick.MARKER
    return marker.read_bytes() if marker.is_file() else b""


def read_sealed_roster(info: StickInfo, passphrase: str | None) -> bytes | None:
    """The roster bytes (checked against stick.json, then decrypted), or None if the stick has none."""
    meta = info.extras.get("roster")
    if not meta:
        return None
    path = info.folder / ROSTER_FILE
    if not path.is_file():
        raise IncompleteError("U盘上缺少花名册文件 roster.sealed", "the roster file roster.sealed is missing from the stick")
    sealed = path.read_bytes()
    if _sha(sealed) != meta.get("sha256"):
        raise BundleError("U盘上的花名册被改动过，已拒绝", "the roster on the stick was changed; refused")
    if not passphrase:
        raise RosterError("花名册已加密，请输入口令", "the roster is encrypted: give the passphrase")
    return open_roster(sealed, passphrase, info.school_code)

