"""Encrypting personal data to a key both sides already pin: the hub's online key or a device key.

Roster changes and learners' spaces (minors' data) travel between the hub and a
school inside signed messages, over plain HTTP or on a stick that passes through
many hands. They are encrypted with the same construction as ``usb_box`` (libsodium
*sealed box*: ephemeral X25519, XSalsa20-Poly1305), to the X25519 form of the
recipient's Ed25519 signing key (libsodium's documented birational map), so no new
key has to be made, carried or pinned: the hub knows every device's public key
from enrollment, and every device pins the hub's online key at provisioning.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import (
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
    crypto_sign_seed_keypair,
)
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from securesystemslib.signer import Key

from hub_sync.core.errors import FormatError, SignatureError


def seal_to_key(public_key: Key, data: bytes) -> bytes:
    """Encrypt ``data`` so only the holder of the Ed25519 ``public_key``'s private half can read it."""
    try:
        raw = bytes.fromhex(public_key.keyval["public"])
        x25519 = crypto_sign_ed25519_pk_to_curve25519(raw)
    except (KeyError, ValueError, TypeError, CryptoError) as exc:
        raise FormatError("收件方公钥无效，无法加密", f"recipient key cannot be used for encryption: {exc}") from exc
    return SealedBox(PublicKey(x25519)).encrypt(data)


def box_private(pem_path: str | Path) -> PrivateKey:
    """The X25519 private key derived from an Ed25519 PEM key file (``hub_sync.core.keys`` format)."""
    try:
        private = serialization.load_pem_private_key(Path(pem_path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SignatureError(f"无法读取密钥 {pem_path}", f"cannot read key {pem_path}: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise SignatureError(f"{pem_path} 不是 Ed25519 密钥", f"{pem_path} is not an Ed25519 key")
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    _, secret = crypto_sign_seed_keypair(seed)
    return PrivateKey(crypto_sign_ed25519_sk_to_curve25519(secret))


def open_box(private: PrivateKey, data: bytes) -> bytes:
    """Decrypt a sealed box; FormatError if it was not made for this key or was changed."""
    try:
        return SealedBox(private).decrypt(data)
    except (CryptoError, ValueError, TypeError) as exc:
        raise FormatError("无法解密：数据不是发给本机的，或已被改动",
                          "cannot decrypt: the data was not made for this key, or was changed") from exc


def to_text(data: bytes) -> str:
    """Box bytes as base64 text (what JSON messages carry)."""
    return base64.b64encode(data).decode("ascii")


def from_text(text: str) -> bytes:
    """Base64 text back to box bytes; FormatError if it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise FormatError("加密数据格式无效", f"encrypted field is not base64: {exc}") from exc
