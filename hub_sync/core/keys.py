"""Ed25519 keys on disk, as securesystemslib signers and public keys.

Private keys are PEM (PKCS#8) files written with mode 0600 through a temporary
name and a rename, in a folder made 0700; they never leave the machine that made
them. A key found readable by others is made 0600 when it is loaded. Public keys travel
as securesystemslib ``SSlibKey`` dicts (the same form TUF metadata uses).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, Key, SSlibKey

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import SignatureError
from hub_sync.core.file_modes import private_dir, private_file


def generate_key(path: str | Path) -> CryptoSigner:
    """Make a new Ed25519 key, save it at ``path`` (0600), return its signer."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    write_private(Path(path), pem)
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))


def load_signer(path: str | Path) -> CryptoSigner:
    """The signer for the private key saved at ``path``."""
    private_file(path)
    try:
        private = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SignatureError(f"无法读取密钥 {path}", f"cannot read key {path}: {exc}") from exc
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))


def public_key_dict(signer: CryptoSigner) -> dict:
    """The public half as a dict with its key id (for metadata and requests)."""
    return {"keyid": signer.public_key.keyid, **signer.public_key.to_dict()}


def public_key_from_dict(data: dict) -> Key:
    """Rebuild a public key from ``public_key_dict`` output, checking its id."""
    try:
        body = {k: v for k, v in data.items() if k != "keyid"}
        key = SSlibKey.from_dict(data["keyid"], dict(body))
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureError("公钥格式无效", f"malformed public key: {exc}") from exc
    if key.keytype != "ed25519":
        raise SignatureError("只接受 Ed25519 公钥", "only Ed25519 public keys are accepted")
    return key


def write_private(path: Path, data: bytes) -> None:
    """Write secret bytes with mode 0600 in a 0700 folder, atomically."""
    private_dir(path.parent)
    atomic_write(path, data, file_mode=0o600)
