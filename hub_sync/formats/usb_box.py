"""Encrypting to the hub: what a device puts on a stick, only the hub can read.

Usage batches travel on a technician's stick through many hands; they are signed
by the device (DSSE) and then encrypted to the hub's USB encryption key, so a
carrier can neither read nor change them. We use libsodium's *sealed box*
(PyNaCl ``SealedBox``: an ephemeral X25519 key, the shared secret through
BLAKE2b, XSalsa20-Poly1305), a well-reviewed construction, rather than composing
ECDH + HKDF + AES-GCM ourselves.

The hub's key pair lives in ``<hub>/keys/usb-x25519.pem`` (PKCS#8 PEM, 0600),
made on first use; its public half travels in provisioning bundles as base64.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from hub_sync.core.errors import FormatError, SignatureError
from hub_sync.core.keys import write_private

KEY_FILE = "usb-x25519.pem"


def hub_usb_key_path(hub_data_dir: str | Path) -> Path:
    return Path(hub_data_dir) / "keys" / KEY_FILE


def ensure_hub_usb_key(hub_data_dir: str | Path) -> PrivateKey:
    """The hub's USB encryption key, created on first use."""
    path = hub_usb_key_path(hub_data_dir)
    if not path.is_file():
        private = X25519PrivateKey.generate()
        write_private(path, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SignatureError(f"无法读取U盘加密密钥 {path}", f"cannot read the USB encryption key {path}: {exc}") from exc
    if not isinstance(loaded, X25519PrivateKey):
        raise SignatureError(f"{path} 不是 X25519 密钥", f"{path} is not an X25519 key")
    raw = loaded.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return PrivateKey(raw)


def public_b64(private: PrivateKey) -> str:
    """The public half as base64 text (what bundles carry)."""
    return base64.b64encode(bytes(private.public_key)).decode("ascii")


def seal_to_hub(public_key_b64: str, data: bytes) -> bytes:
    """Encrypt ``data`` so only the holder of the hub's private key can read it."""
    try:
        key = PublicKey(base64.b64decode(public_key_b64, validate=True))
    except (ValueError, TypeError) as exc:
        raise FormatError("县平台加密公钥无效，请重新制作U盘", f"invalid hub encryption key: {exc}; make the stick again") from exc
    return SealedBox(key).encrypt(data)


def open_sealed(private: PrivateKey, data: bytes) -> bytes:
    """Decrypt a sealed box made for this hub; FormatError if it was not, or was changed."""
    try:
        return SealedBox(private).decrypt(data)
    except (CryptoError, ValueError, TypeError) as exc:
        raise FormatError("无法解密：文件不是发给本平台的，或已被改动",
                          "cannot decrypt: the file was not made for this hub, or was changed") from exc
