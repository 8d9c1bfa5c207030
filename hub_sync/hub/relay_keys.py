"""The relay's keys in a hub data folder (files only, no SQL).

    H/keys/relay.pem           this hub's relay key: a county signs its device roster and
                               bundles with it, a province its receipts (``hub relay keygen``)
    H/keys/province-relay.pub  at a county: the province's relay public key (JSON), which
                               every receipt must verify against (``hub relay trust``)

A county gives its public key (``hub relay key``) to the province bureau, which registers
it with ``hub county add --key``; the province gives its own to the county the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

from securesystemslib.signer import CryptoSigner, Key

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import FormatError, SignatureError, StoreError
from hub_sync.core.keys import generate_key, load_signer, public_key_dict, public_key_from_dict

RELAY_KEY = "relay.pem"
PROVINCE_KEY = "province-relay.pub"


class RelayKeyMissing(StoreError):
    """The relay key (or the province's) is not there yet."""

    code = "relay_key_missing"
    http_status = 503


def relay_key_path(data_dir: Path) -> Path:
    return Path(data_dir) / "keys" / RELAY_KEY


def generate_relay_key(data_dir: Path) -> CryptoSigner:
    """Make this hub's relay key; refuses to replace one (the province trusts it)."""
    path = relay_key_path(data_dir)
    if path.exists():
        raise StoreError(f"中继密钥已存在：{path}（省级平台信任它，不能替换）",
                         f"the relay key already exists: {path} (the province trusts it; not replaced)")
    return generate_key(path)


def relay_signer(data_dir: Path) -> CryptoSigner:
    """This hub's relay key; RelayKeyMissing with the command that makes it."""
    path = relay_key_path(data_dir)
    if not path.is_file():
        raise RelayKeyMissing("还没有中继密钥：请运行 school-edge hub relay keygen",
                              "no relay key yet: run 'school-edge hub relay keygen' first")
    return load_signer(path)


def relay_public_key(data_dir: Path) -> dict:
    """This hub's relay public key as JSON (what the other side registers)."""
    return public_key_dict(relay_signer(data_dir))


def read_public_key(path: Path) -> dict:
    """A public key file (JSON, as ``hub relay key`` prints it), checked."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        public_key_from_dict(data)
    except (OSError, ValueError, KeyError, TypeError, SignatureError) as exc:
        raise FormatError(f"公钥文件无效：{path}", f"not a public key file: {path} ({exc})") from exc
    return data


def trust_province(data_dir: Path, key: dict) -> None:
    """Pin the province's relay public key: receipts must verify against it."""
    atomic_write(Path(data_dir) / "keys" / PROVINCE_KEY, json.dumps(key, sort_keys=True).encode("utf-8"))


def province_key(data_dir: Path) -> Key:
    path = Path(data_dir) / "keys" / PROVINCE_KEY
    if not path.is_file():
        raise RelayKeyMissing("还没有省级平台的中继公钥：请运行 school-edge hub relay trust --key 省级公钥文件",
                              "the province's relay key is not trusted yet: run 'school-edge hub relay trust --key FILE'")
    return public_key_from_dict(json.loads(path.read_text("utf-8")))
