"""A firmware release: its manifest, its files, its signature and the rule of what
may replace what (pure apart from reading the release folder's files).

A release folder holds::

    manifest.json   canonical JSON {"format": 1, "version": "0.2.0", "min_from": "0.1.0",
                    "migrations": ["edge:spaces/m007_...", ...], "built_at": "ISO",
                    "python": "3.11", "files": {"wheels/<name>.whl": {"size": n, "sha256": hex}}}
    wheels/*.whl    the application wheel and every runtime dependency
    release.dsse    (signed releases only) a DSSE envelope of type ``firmware-release``:
                    {"manifest_sha256": hex, "version": "0.2.0", "downgrade": false,
                     "schools": ["3301..."] or null}, signed by the key of the TUF
                    delegated role ``firmware``

The signature covers the manifest's bytes by hash; the manifest covers every file
by size and sha256, so one verified signature vouches for the whole folder. A
release for an older version installs only when it is signed as a downgrade; a
release naming schools installs only at those schools (``null``: any school of the
county).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from packaging.version import InvalidVersion, Version

from hub_sync.core.errors import FormatError, SyncError
from hub_sync.formats.envelope import canonical_json, open_envelope, seal

FORMAT = 1
RELEASE_KIND = "firmware-release"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "release.dsse"
WHEELS_DIR = "wheels"
_CHUNK = 1 << 20


class ReleaseRefusedError(SyncError):
    """A well-formed, correctly signed release that may not be installed here
    (a downgrade not signed as one, another school's, too old to upgrade from)."""

    code = "release_refused"
    http_status = 409


@dataclass(frozen=True)
class Manifest:
    """What a release holds (see the module docstring)."""

    version: str
    min_from: str
    migrations: tuple[str, ...] = ()
    files: dict[str, dict] = field(default_factory=dict)
    built_at: str = ""
    python: str = ""

    @property
    def total_size(self) -> int:
        """Bytes of every file the manifest lists."""
        return sum(entry["size"] for entry in self.files.values())

    def wheel_paths(self) -> list[str]:
        """The listed wheels' relative paths, sorted."""
        return sorted(p for p in self.files if p.startswith(WHEELS_DIR + "/") and p.endswith(".whl"))


def parse_version(text: str) -> Version:
    """``text`` as a PEP 440 version; FormatError when it is none."""
    try:
        return Version(text)
    except (InvalidVersion, TypeError) as exc:
        raise FormatError(f"版本号无效：{text}", f"not a version number: {text!r}") from exc


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is older than, equal to or newer than ``b``."""
    va, vb = parse_version(a), parse_version(b)
    return (va > vb) - (va < vb)


def safe_relpath(path: str) -> str:
    """``path`` if it is a plain relative path inside the release folder, else FormatError."""
    p = PurePosixPath(path)
    if (not path or p.is_absolute() or "\\" in path or any(part in ("", ".", "..") for part in path.split("/"))
            or str(p) != path):
        raise FormatError(f"发布清单中的文件路径不安全：{path}", f"unsafe file path in the manifest: {path!r}")
    return path


def file_digest(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of the file at ``path``."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _listed_files(release_dir: Path) -> list[str]:
    """Every regular file under ``release_dir`` except the manifest and the signature."""
    found = []
    for dirpath, dirnames, filenames in os.walk(release_dir):
        dirnames.sort()
        for name in sorted(filenames):
            rel = Path(dirpath, name).relative_to(release_dir).as_posix()
            if rel not in (MANIFEST_NAME, SIGNATURE_NAME):
                found.append(rel)
    return found


def build_manifest(release_dir: str | Path, version: str, min_from: str, migrations: list[str] | tuple[str, ...],
                   built_at: str, python: str) -> Manifest:
    """The manifest of the files now in ``release_dir`` (hashing each one)."""
    release_dir = Path(release_dir)
    parse_version(version)
    parse_version(min_from)
    files = {}
    for rel in _listed_files(release_dir):
        size, digest = file_digest(release_dir / rel)
        files[rel] = {"size": size, "sha256": digest}
    return Manifest(version, min_from, tuple(migrations), files, built_at, python)


def manifest_bytes(manifest: Manifest) -> bytes:
    """The canonical JSON bytes of ``manifest`` (what the signature's hash covers)."""
    return canonical_json({"format": FORMAT, "version": manifest.version, "min_from": manifest.min_from,
                           "migrations": list(manifest.migrations), "files": manifest.files,
                           "built_at": manifest.built_at, "python": manifest.python})


def load_manifest(data: bytes) -> Manifest:
    """Parse and check manifest bytes; FormatError for anything malformed."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError("not a format-1 manifest")
        files = raw["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
        for rel, entry in files.items():
            safe_relpath(rel)
            if rel in (MANIFEST_NAME, SIGNATURE_NAME):
                raise ValueError(f"the manifest lists {rel}")
            if (not isinstance(entry, dict) or set(entry) != {"size", "sha256"} or type(entry["size"]) is not int
                    or entry["size"] < 0 or not _is_sha256(entry["sha256"])):
                raise ValueError(f"bad entry for {rel}")
        migrations = raw.get("migrations", [])
        if not isinstance(migrations, list) or not all(isinstance(m, str) for m in migrations):
            raise TypeError("migrations is not a list of names")
        manifest = Manifest(str(raw["version"]), str(raw["min_from"]), tuple(migrations),
                            {k: dict(v) for k, v in files.items()}, str(raw.get("built_at", "")),
                            str(raw.get("python", "")))
    except FormatError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FormatError("发布清单无效", f"release manifest is malformed: {exc}") from exc
    parse_version(manifest.version)
    parse_version(manifest.min_from)
    return manifest


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def verify_files(release_dir: str | Path, manifest: Manifest) -> None:
    """Check every file of ``release_dir`` against ``manifest``: present, right size and
    sha256, no file missing, none extra, no link or path leading out. FormatError on any."""
    release_dir = Path(release_dir)
    on_disk = set(_listed_files(release_dir))
    missing = sorted(set(manifest.files) - on_disk)
    extra = sorted(on_disk - set(manifest.files))
    if missing:
        raise FormatError(f"发布不完整（缺少 {len(missing)} 个文件，如 {missing[0]}），已拒收",
                          f"release is incomplete ({len(missing)} file(s) missing, e.g. {missing[0]}); refused")
    if extra:
        raise FormatError(f"发布中有清单以外的文件 {extra[0]}，已拒收",
                          f"release holds a file the manifest does not list: {extra[0]}; refused")
    for rel, entry in sorted(manifest.files.items()):
        path = release_dir / safe_relpath(rel)
        if path.is_symlink() or not path.is_file():
            raise FormatError(f"发布中的 {rel} 不是普通文件，已拒收", f"{rel} in the release is not a regular file; refused")
        size = path.stat().st_size
        if size != entry["size"]:
            raise FormatError(f"发布中的 {rel} 大小不对（可能未拷完），已拒收",
                              f"{rel} has {size} bytes, the manifest says {entry['size']} (cut short?); refused")
        if file_digest(path)[1] != entry["sha256"]:
            raise FormatError(f"发布中的 {rel} 内容被改动，已拒收", f"{rel} does not match its sha256 (tampered with?); refused")


def release_statement(manifest_data: bytes, version: str, downgrade: bool = False,
                      schools: list[str] | None = None) -> dict:
    """The signed statement for a manifest's bytes (the payload of ``release.dsse``)."""
    return {"manifest_sha256": hashlib.sha256(manifest_data).hexdigest(), "version": version,
            "downgrade": bool(downgrade), "schools": sorted(schools) if schools is not None else None}


def sign_release(manifest_data: bytes, signer, downgrade: bool = False, schools: list[str] | None = None) -> bytes:
    """The ``release.dsse`` envelope for ``manifest_data``, signed by ``signer`` (the
    ``firmware`` role's key); ``schools=None`` means any school of the county."""
    manifest = load_manifest(manifest_data)
    return seal(RELEASE_KIND, canonical_json(release_statement(manifest_data, manifest.version, downgrade, schools)),
                signer)


def open_release(envelope: bytes, trusted_keys: list, manifest_data: bytes | None = None) -> dict:
    """Verify ``envelope`` against ``trusted_keys`` and return its statement.

    SignatureError for an unknown key or a bad signature, FormatError for a malformed
    statement or (given ``manifest_data``) one that does not vouch for those bytes.
    """
    payload, _ = open_envelope(envelope, RELEASE_KIND, list(trusted_keys))
    try:
        statement = json.loads(payload)
        if not isinstance(statement, dict):
            raise TypeError("not an object")
        if not _is_sha256(statement["manifest_sha256"]) or not isinstance(statement["version"], str):
            raise ValueError("bad manifest hash or version")
        if not isinstance(statement.get("downgrade", False), bool):
            raise TypeError("downgrade is not a boolean")
        schools = statement.get("schools")
        if schools is not None and not (isinstance(schools, list) and all(isinstance(s, str) for s in schools)):
            raise TypeError("schools is not a list of codes")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FormatError("发布签名的内容无效", f"release statement is malformed: {exc}") from exc
    if manifest_data is not None:
        if hashlib.sha256(manifest_data).hexdigest() != statement["manifest_sha256"]:
            raise FormatError("发布清单与签名不符（被改动），已拒收",
                              "the release manifest does not match its signature (tampered with?); refused")
        if load_manifest(manifest_data).version != statement["version"]:
            raise FormatError("发布清单的版本与签名不符，已拒收", "the manifest's version differs from the signed one; refused")
    return {"manifest_sha256": statement["manifest_sha256"], "version": statement["version"],
            "downgrade": statement.get("downgrade", False), "schools": schools}


def check_upgrade(installed: str, manifest: Manifest, downgrade_signed: bool = False) -> str:
    """May ``manifest``'s release replace version ``installed``? Returns "upgrade",
    "same" or "downgrade"; raises ReleaseRefusedError with one clear line otherwise."""
    order = compare_versions(manifest.version, installed)
    if order < 0:
        if not downgrade_signed:
            raise ReleaseRefusedError(
                f"发布版本 {manifest.version} 比已安装的 {installed} 旧；只有县里签为降级的发布才能安装，已拒收",
                f"release {manifest.version} is older than the installed {installed}; "
                "only a release the county signs as a downgrade may install; refused")
        return "downgrade"
    if order == 0:
        return "same"
    if compare_versions(installed, manifest.min_from) < 0:
        raise ReleaseRefusedError(
            f"发布 {manifest.version} 只能从 {manifest.min_from} 或更新的版本升级，本机为 {installed}，已拒收",
            f"release {manifest.version} upgrades only from {manifest.min_from} or later; this is {installed}; refused")
    return "upgrade"


def check_school(statement: dict, school_code: str | None) -> None:
    """ReleaseRefusedError when the signed statement names schools and ``school_code`` is not one."""
    schools = statement.get("schools")
    if schools is None:
        return
    if school_code not in schools:
        raise ReleaseRefusedError(f"此发布是给其他学校的（本校 {school_code or '未注册'}），已拒收",
                                  f"this release is meant for other schools (this one is {school_code or 'unenrolled'}); "
                                  "refused")
