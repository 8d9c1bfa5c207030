"""Minimal provisioning and enrollment: signed bundle, device key, enrollment
request, registration on first contact or from the request file."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from click.testing import CliRunner
from securesystemslib.dsse import Envelope

from edge_agent.cli import main
from edge_agent.config import EdgeConfig
from fixtures.common import SCHOOL
from hub_sync.formats.enrollment import make_subscription, read_enrollment
from hub_sync.formats.envelope import canonical_json, seal
from hub_sync.core.errors import DeviceError, SignatureError
from hub_sync.hub import Hub
from hub_sync.hub.publisher import repo_for
from hub_sync.hub.registry import Registry
from hub_sync.hub.repo_api import enroll
from hub_sync.core.keys import generate_key, load_signer, public_key_dict
from provisioning.apply import apply_bundle
from provisioning.bundle import BUNDLE_FILE, BUNDLE_KIND, make_bundle
from provisioning.errors import BundleError, ProvisionError

def _bundle(hub, tmp_path):
    make_bundle(hub, SCHOOL, "红星小学", "http://127.0.0.1:9", "rsync://127.0.0.1:10/content", tmp_path / "bundle")
    return tmp_path / "bundle"


def test_apply_makes_a_private_device_key_and_a_signed_enrollment_request(hub, appliance, tmp_path):
    bundle_dir = _bundle(hub, tmp_path)
    bundle, request_copy = apply_bundle(appliance, bundle_dir)
    key_file = appliance.data_dir / "keys" / "device.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    request = read_enrollment((appliance.data_dir / "enrollment-request.json").read_bytes())
    assert request["device_id"] == appliance.device_id and request["school_code"] == SCHOOL
    assert request["public_key"] == public_key_dict(load_signer(key_file))
    assert request_copy.read_bytes() == (appliance.data_dir / "enrollment-request.json").read_bytes()
    assert b"PRIVATE" not in request_copy.read_bytes()
    assert (appliance.data_dir / "sync" / "pinned-root.json").read_bytes() == repo_for(hub).root_bytes()
    assert appliance.school_code == SCHOOL and appliance.identity("hub_url") == "http://127.0.0.1:9"
    assert json.loads((appliance.data_dir / "trust" / "hub_online_key.json").read_text())["keyid"] == hub.online_signer.public_key.keyid
    assert EdgeConfig.load(appliance.data_dir).hub_url == "http://127.0.0.1:9"


def test_hub_registers_the_device_from_the_request_file(hub, appliance, tmp_path):
    apply_bundle(appliance, _bundle(hub, tmp_path))
    hub.close()
    result = CliRunner().invoke(main, ["hub", "enroll", "--data", str(hub.data_dir), str(appliance.data_dir / "enrollment-request.json")])
    assert result.exit_code == 0, result.output
    reopened = Hub.open(hub.data_dir)
    try:
        device = Registry(reopened.db).active(appliance.device_id)
        assert device.school_code == SCHOOL
        assert device.public_key.keyid == load_signer(appliance.data_dir / "keys" / "device.pem").public_key.keyid
        # the same request again changes nothing
        enroll(reopened, (appliance.data_dir / "enrollment-request.json").read_bytes())
        assert Registry(reopened.db).count() == 1
    finally:
        reopened.close()


def test_tampered_bundle_is_refused_and_nothing_is_written(hub, appliance, tmp_path):
    bundle_dir = _bundle(hub, tmp_path)
    env = json.loads((bundle_dir / BUNDLE_FILE).read_bytes())
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["hub_url"] = "http://evil.example"
    env["payload"] = base64.b64encode(canonical_json(payload)).decode()
    (bundle_dir / BUNDLE_FILE).write_text(json.dumps(env))
    with pytest.raises(BundleError, match="signature"):
        apply_bundle(appliance, bundle_dir)
    assert not (appliance.data_dir / "keys").exists() and not (appliance.data_dir / "sync").exists()
    assert appliance.school_code == "" and appliance.identity("hub_url") is None


def test_bundle_signed_by_another_root_than_it_pins_is_refused(hub, appliance, tmp_path):
    bundle_dir = _bundle(hub, tmp_path)
    payload = json.loads(Envelope.from_dict(json.loads((bundle_dir / BUNDLE_FILE).read_bytes())).payload)
    impostor = generate_key(tmp_path / "impostor.pem")
    payload["root_key"] = public_key_dict(impostor)  # self-consistent signature, but not the pinned root's key
    (bundle_dir / BUNDLE_FILE).write_bytes(seal(BUNDLE_KIND, canonical_json(payload), impostor))
    with pytest.raises(BundleError, match="root key"):
        apply_bundle(appliance, bundle_dir)
    assert not (appliance.data_dir / "sync").exists()


def test_enrollment_without_a_token_of_this_hub_is_refused(hub, appliance, tmp_path):
    apply_bundle(appliance, _bundle(hub, tmp_path))
    other = Hub.init(tmp_path / "other-hub", reserve_mb=1)
    try:
        with pytest.raises(DeviceError, match="provisioning bundle"):
            enroll(other, (appliance.data_dir / "enrollment-request.json").read_bytes())
        assert Registry(other.db).count() == 0
    finally:
        other.close()


def test_enrollment_request_with_a_bad_signature_is_refused(hub, appliance, tmp_path):
    apply_bundle(appliance, _bundle(hub, tmp_path))
    env = json.loads((appliance.data_dir / "enrollment-request.json").read_bytes())
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["school_code"] = "4119999999"
    env["payload"] = base64.b64encode(canonical_json(payload)).decode()
    with pytest.raises(SignatureError):
        enroll(hub, json.dumps(env).encode())
    assert Registry(hub.db).count() == 0


def test_appliance_of_another_school_is_not_reprovisioned(hub, appliance, tmp_path):
    apply_bundle(appliance, _bundle(hub, tmp_path))
    make_bundle(hub, "4110000001", "别的学校", "http://127.0.0.1:9", "rsync://127.0.0.1:10/content", tmp_path / "b2")
    with pytest.raises(ProvisionError, match="4110000001"):
        apply_bundle(appliance, tmp_path / "b2")
    assert appliance.school_code == SCHOOL


def test_cli_make_and_apply(hub, tmp_path):
    hub.close()
    runner = CliRunner()
    out = runner.invoke(main, ["provision", "make", "--hub-data", str(hub.data_dir), "--school-code", SCHOOL,
                               "--school-name", "红星小学", "--hub-url", "http://127.0.0.1:9", "--out", str(tmp_path / "b")])
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, ["provision", "apply", str(tmp_path / "b"), "--data", str(tmp_path / "e"), "--no-enroll"])
    assert out.exit_code == 0, out.output
    assert SCHOOL in out.output and (tmp_path / "e" / "keys" / "device.pem").is_file()
    bad = runner.invoke(main, ["provision", "make", "--hub-data", str(hub.data_dir), "--school-code", "12",
                               "--school-name", "x", "--hub-url", "http://127.0.0.1:9", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 1 and "10" in bad.output and not (tmp_path / "c").exists()


def test_subscription_signed_by_another_key_is_refused(hub, appliance, tmp_path):
    from hub_sync.hub.app import create_hub_app
    from hub_sync.hub.channels import Channels

    apply_bundle(appliance, _bundle(hub, tmp_path))
    enroll(hub, (appliance.data_dir / "enrollment-request.json").read_bytes())
    Channels(hub.db).put_channel("math-1", mandatory=False)
    client = create_hub_app(hub).test_client()
    forged = make_subscription(generate_key(tmp_path / "other.pem"), appliance.device_id, SCHOOL, "math-1", True)
    assert client.post("/api/v1/hub/subscriptions", data=forged).status_code == 403
    assert [c.id for c in Channels(hub.db).channels_for(SCHOOL)] == []
    good = make_subscription(load_signer(appliance.data_dir / "keys" / "device.pem"), appliance.device_id, SCHOOL, "math-1", True)
    assert client.post("/api/v1/hub/subscriptions", data=good).status_code == 200
    assert [c.id for c in Channels(hub.db).channels_for(SCHOOL)] == ["math-1"]
