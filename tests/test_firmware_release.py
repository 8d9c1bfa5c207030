"""A firmware release's formats (``hub_sync.formats.firmware_release``): the manifest
round-trips and vouches for every file, the signature vouches for the manifest, and
the rule of what may replace what refuses downgrades, other schools' releases and
releases too new to upgrade from this version; plus the state summary of an
appliance that never updated."""

from __future__ import annotations

import json
import os

import pytest

from hub_sync.core.errors import FormatError, SignatureError
from hub_sync.core.keys import generate_key
from hub_sync.formats.firmware_release import (
    Manifest, ReleaseRefusedError, build_manifest, check_school, check_upgrade, compare_versions, load_manifest,
    manifest_bytes, open_release, sign_release, verify_files)

from firmware import __version__
from firmware.state import NO_UPDATE, summary


@pytest.fixture
def release(tmp_path):
    root = tmp_path / "release"
    (root / "wheels").mkdir(parents=True)
    (root / "wheels" / "school_edge-0.2.0-py3-none-any.whl").write_bytes(b"app" * 100)
    (root / "wheels" / "flask-3.0.0-py3-none-any.whl").write_bytes(b"dep" * 50)
    manifest = build_manifest(root, "0.2.0", "0.1.0", ["edge:spaces/m001"], "2026-11-28T00:00:00Z", "3.11")
    (root / "manifest.json").write_bytes(manifest_bytes(manifest))
    return root, manifest


def test_a_manifest_lists_every_file_and_round_trips(release):
    root, manifest = release
    assert set(manifest.files) == {"wheels/school_edge-0.2.0-py3-none-any.whl", "wheels/flask-3.0.0-py3-none-any.whl"}
    assert manifest.files["wheels/flask-3.0.0-py3-none-any.whl"]["size"] == 150
    assert manifest.total_size == 450
    data = (root / "manifest.json").read_bytes()
    assert load_manifest(data) == manifest
    assert manifest_bytes(load_manifest(data)) == data  # canonical
    verify_files(root, manifest)


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "wheels" / "flask-3.0.0-py3-none-any.whl").write_bytes(b"dep" * 49), "cut short"),
    (lambda r: (r / "wheels" / "flask-3.0.0-py3-none-any.whl").write_bytes(b"DEP" * 50), "tampered"),
    (lambda r: (r / "wheels" / "flask-3.0.0-py3-none-any.whl").unlink(), "incomplete"),
    (lambda r: (r / "wheels" / "extra.whl").write_bytes(b"x"), "does not list"),
    (lambda r: ((r / "wheels" / "flask-3.0.0-py3-none-any.whl").unlink(),
                os.symlink("/etc/passwd", r / "wheels" / "flask-3.0.0-py3-none-any.whl")), "not a regular file"),
])
def test_a_damaged_release_folder_is_refused(release, damage, message):
    root, manifest = release
    damage(root)
    with pytest.raises(FormatError, match=message):
        verify_files(root, manifest)


@pytest.mark.parametrize("change", [
    {"format": 2}, {"version": "not a version"}, {"files": []},
    {"files": {"../evil.whl": {"size": 1, "sha256": "a" * 64}}},
    {"files": {"/etc/passwd": {"size": 1, "sha256": "a" * 64}}},
    {"files": {"wheels//x.whl": {"size": 1, "sha256": "a" * 64}}},
    {"files": {"manifest.json": {"size": 1, "sha256": "a" * 64}}},
    {"files": {"wheels/x.whl": {"size": -1, "sha256": "a" * 64}}},
    {"files": {"wheels/x.whl": {"size": 1, "sha256": "zz"}}},
    {"migrations": "m001"},
])
def test_a_malformed_manifest_is_refused(release, change):
    root, _ = release
    body = {**json.loads((root / "manifest.json").read_bytes()), **change}
    with pytest.raises(FormatError):
        load_manifest(json.dumps(body).encode())


@pytest.mark.parametrize("data", [b"", b"[]", b"not json", b'{"format": 1}'])
def test_garbage_is_not_a_manifest(data):
    with pytest.raises(FormatError):
        load_manifest(data)


def test_the_signature_vouches_for_the_manifest_and_its_terms(release, tmp_path):
    root, _ = release
    firmware_key, stranger = generate_key(tmp_path / "k" / "fw.pem"), generate_key(tmp_path / "k" / "x.pem")
    data = (root / "manifest.json").read_bytes()
    envelope = sign_release(data, firmware_key, schools=["330101", "330102"])
    statement = open_release(envelope, [firmware_key.public_key], data)
    assert statement["version"] == "0.2.0" and statement["downgrade"] is False
    assert statement["schools"] == ["330101", "330102"]
    check_school(statement, "330102")
    with pytest.raises(ReleaseRefusedError, match="other schools"):
        check_school(statement, "330999")
    check_school(open_release(sign_release(data, firmware_key), [firmware_key.public_key]), "330999")
    with pytest.raises(SignatureError, match="unknown key"):
        open_release(envelope, [stranger.public_key], data)
    with pytest.raises(FormatError, match="does not match its signature"):
        open_release(envelope, [firmware_key.public_key], data.replace(b"0.1.0", b"0.0.1"))
    with pytest.raises(FormatError):
        open_release(b"garbage", [firmware_key.public_key])


def test_versions_compare_as_numbers():
    assert compare_versions("0.10.0", "0.9.1") == 1
    assert compare_versions("1.0", "1.0.0") == 0
    assert compare_versions("1.0rc1", "1.0") == -1
    with pytest.raises(FormatError):
        compare_versions("x.y", "1.0")


def test_the_upgrade_rule():
    m = Manifest("0.3.0", "0.2.0")
    assert check_upgrade("0.2.5", m) == "upgrade"
    assert check_upgrade("0.3.0", m) == "same"
    with pytest.raises(ReleaseRefusedError, match="older than the installed"):
        check_upgrade("0.4.0", m)
    assert check_upgrade("0.4.0", m, downgrade_signed=True) == "downgrade"
    with pytest.raises(ReleaseRefusedError, match="upgrades only from 0.2.0"):
        check_upgrade("0.1.0", m)


def test_an_appliance_that_never_updated_reports_its_installed_version(tmp_path):
    report = summary(tmp_path / "data")
    assert report["version"] == __version__
    assert report["last_reason"] == NO_UPDATE and report["last_result"] == "none"
    assert report["committed"] is True and report["rollbacks"] == 0 and report["pending_version"] is None
    assert not (tmp_path / "data").exists()  # reading the state writes nothing
