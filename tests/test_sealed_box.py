"""One sealed box (``hub_sync.formats.sealed_box``) for everything encrypted between the
hub and its devices: it opens only with the recipient's key, refuses a changed box, and
keys the hub retired (``hub rotate-key``, the stick key of earlier versions) still open
what was sealed to them."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.public import PublicKey, SealedBox

from hub_sync.core.errors import FormatError, SignatureError
from hub_sync.core.keys import generate_key, write_private
from hub_sync.formats.sealed_box import box_key, from_text, open_sealed, seal_to, to_text

SPACE = "一个学生的空间 a learner's space".encode()


@pytest.fixture
def keys(tmp_path):
    """Two Ed25519 key files and their signers: the recipient's and someone else's."""
    return {name: (tmp_path / f"{name}.pem", generate_key(tmp_path / f"{name}.pem")) for name in ("mine", "other")}


def test_a_box_opens_with_the_recipients_key_only(keys):
    (mine, signer), (other, _) = keys["mine"], keys["other"]
    box = seal_to(signer.public_key, SPACE)
    assert SPACE not in box
    assert open_sealed(box, [box_key(mine)]) == SPACE
    with pytest.raises(FormatError, match="not sealed to this key"):
        open_sealed(box, [box_key(other)])
    assert seal_to(signer.public_key, SPACE) != box  # an ephemeral key each time: equal boxes say nothing


@pytest.mark.parametrize("change", [lambda b: b[:-1], lambda b: b[:10] + bytes([b[10] ^ 1]) + b[11:],
                                    lambda b: b + b"x", lambda b: b"", lambda b: b"\x00" * 20])
def test_a_changed_box_is_refused(keys, change):
    mine, signer = keys["mine"]
    with pytest.raises(FormatError, match="changed"):
        open_sealed(change(seal_to(signer.public_key, SPACE)), [box_key(mine)])


def test_a_retired_key_still_opens_what_was_sealed_to_it(keys):
    (old, old_signer), (new, _) = keys["mine"], keys["other"]
    sealed_before = seal_to(old_signer.public_key, SPACE)
    assert open_sealed(sealed_before, [box_key(new), box_key(old)]) == SPACE  # current first, then retired
    with pytest.raises(FormatError):
        open_sealed(sealed_before, [box_key(new)])


def test_keys_are_taken_only_until_one_opens_the_box(keys):
    (mine, signer), (other, _) = keys["mine"], keys["other"]
    taken = []

    def lazily():
        for path in (mine, other):
            taken.append(path)
            yield box_key(path)

    assert open_sealed(seal_to(signer.public_key, SPACE), lazily()) == SPACE and taken == [mine]


def test_the_stick_key_of_earlier_versions_still_opens_its_boxes(tmp_path):
    legacy = X25519PrivateKey.generate()
    write_private(tmp_path / "usb-x25519.pem", legacy.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    raw_public = legacy.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    box = SealedBox(PublicKey(raw_public)).encrypt(SPACE)  # what an earlier device wrote to a stick
    assert open_sealed(box, [box_key(tmp_path / "usb-x25519.pem")]) == SPACE


def test_unusable_keys_are_refused_clearly(tmp_path, keys):
    _, signer = keys["mine"]
    with pytest.raises(SignatureError, match="cannot read key"):
        box_key(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(SignatureError, match="cannot read key"):
        box_key(tmp_path / "junk.pem")
    broken = type(signer.public_key)(signer.public_key.keyid, "ed25519", "ed25519", {"public": "zz"})
    with pytest.raises(FormatError, match="cannot be used for encryption"):
        seal_to(broken, SPACE)


def test_boxes_travel_in_json_as_base64(keys):
    mine, signer = keys["mine"]
    box = seal_to(signer.public_key, SPACE)
    assert open_sealed(from_text(to_text(box)), [box_key(mine)]) == SPACE
    with pytest.raises(FormatError, match="base64"):
        from_text("not base64!")


def test_the_hub_opens_boxes_sealed_to_its_current_retired_and_legacy_keys(tmp_path):
    from hub_sync.hub.downlink import LEGACY_USB_KEY_FILE, hub_box_opener
    from hub_sync.hub.hub import Hub
    from hub_sync.hub.publisher import rotate_online_key

    hub = Hub.init(tmp_path / "hub", reserve_mb=1)
    try:
        before = seal_to(hub.online_signer.public_key, b"before rotation")
        rotate_online_key(hub)
        after = seal_to(hub.online_signer.public_key, b"after rotation")
        legacy = X25519PrivateKey.generate()
        write_private(hub.data_dir / "keys" / LEGACY_USB_KEY_FILE, legacy.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        raw = legacy.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        old_stick = SealedBox(PublicKey(raw)).encrypt(b"old stick")
        stranger = seal_to(generate_key(tmp_path / "stranger.pem").public_key, b"not for the hub")
        opener = hub_box_opener(hub)
        assert [opener(b) for b in (before, after, old_stick)] == [b"before rotation", b"after rotation", b"old stick"]
        with pytest.raises(FormatError):
            opener(stranger)
    finally:
        hub.close()
