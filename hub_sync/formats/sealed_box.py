"""The one sealed box: encrypting to a key the other side already pins.

What travels through many hands is sealed so only its recipient can read it:
usage batches a device puts on a stick (to the hub), a transferred learner's space
going up (to the hub), roster changes and spaces coming down (to one device).

The construction is libsodium's *sealed box* (PyNaCl ``SealedBox``: an ephemeral
X25519 key, the shared secret through BLAKE2b, XSalsa20-Poly1305), addressed to the
X25519 form of the recipient's Ed25519 signing key (libsodium's documented
birational map, ``crypto_sign_ed25519_pk_to_curve25519``). Why this one:

* it is a well-reviewed construction with one call each way, rather than
  ECDH + HKDF + AES-GCM composed here (the other candidate, which would need its
  own nonce, key-derivation and framing rules);
* no encryption key has to be made, carried or pinned: the hub's box key is its
  **online key**, which every device pins at provisioning and follows through TUF
  root rotations (``edge_agent.sync.hub_key``); a device's box key is the device
  key the hub learnt at enrollment. Earlier versions had a second hub key for
  sticks (an X25519 ``keys/usb-x25519.pem`` carried in provisioning bundles);
  that key is only read now to open what was sealed to it before.

After ``hub rotate-key`` the retired online keys still open boxes sealed to them
(a device that sealed before it saw the new root): ``open_sealed`` takes every key
the recipient holds and tries each.

Pure: bytes and keys in, bytes out; FormatError for a box that is not for these
keys or was changed, SignatureError for a key file that cannot be read.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519, crypto_sign_ed25519_sk_to_curve25519, crypto_sign_seed_keypair
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from securesystemslib.signer import Key

from hub_sync.core.errors import FormatError, SignatureError

_RAW = (serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def seal_to(public_key: Key, data: bytes) -> bytes:
    """Encrypt ``data`` so only the holder of the Ed25519 ``public_key``'s private half can read it."""
    try:
        x25519 = crypto_sign_ed25519_pk_to_curve25519(bytes.fromhex(public_key.keyval["public"]))
    except (AttributeError, KeyError, ValueError, TypeError, CryptoError) as exc:
        raise FormatError("收件方公钥无效，无法加密", f"recipient key cannot be used for encryption: {exc}") from exc
    return SealedBox(PublicKey(x25519)).encrypt(data)


def box_key(pem_path: str | Path) -> PrivateKey:
    """The box key of a private key file: the X25519 form of an Ed25519 key
    (``hub_sync.core.keys`` format), or a legacy X25519 key as it is."""
    try:
        private = serialization.load_pem_private_key(Path(pem_path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(f"无法读取密钥 {pem_path}", f"cannot read key {pem_path}: {exc}") from exc
    if isinstance(private, Ed25519PrivateKey):
        _, secret = crypto_sign_seed_keypair(private.private_bytes(*_RAW))
        return PrivateKey(crypto_sign_ed25519_sk_to_curve25519(secret))
    if isinstance(private, X25519PrivateKey):
        return PrivateKey(private.private_bytes(*_RAW))
    raise SignatureError(f"{pem_path} 不是 Ed25519 密钥", f"{pem_path} is not an Ed25519 key")


def open_sealed(data: bytes, keys: Iterable[PrivateKey]) -> bytes:
    """Decrypt a box with the first of ``keys`` it was sealed to (keys are taken one by
    one, so a lazy iterable reads no more key files than needed); FormatError if it
    was made for none of them, or was changed."""
    for key in keys:
        try:
            return SealedBox(key).decrypt(data)
        except (CryptoError, ValueError, TypeError):
            continue  # sealed to another of the recipient's keys, or damaged: try the next
    raise FormatError("无法解密：数据不是发给本机的，或已被改动",
                      "cannot decrypt: the data was not sealed to this key, or was changed")


def to_text(box: bytes) -> str:
    """Box bytes as base64 text (what JSON messages carry)."""
    return base64.b64encode(box).decode("ascii")


def from_text(text: str) -> bytes:
    """Base64 text back to box bytes; FormatError if it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise FormatError("加密数据格式无效", f"encrypted field is not base64: {exc}") from exc
