"""A bundle's enrollment token enrolls one device, once, before it expires, so a lost or
copied stick lets no second device in; enrolling signs no new TUF metadata. Against the
real ``school-edge hub serve``; each refusal says why (Chinese, then English) and changes
nothing at the hub."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from click.testing import CliRunner
from fixtures.common import OTHER_SCHOOL, SCHOOL

from edge_agent.appliance import Appliance
from edge_agent.cli import main
from edge_agent.config import EdgeConfig
from edge_agent.sync.content_sync import enroll_now
from hub_sync.core.errors import DeviceError
from hub_sync.core.keys import generate_key
from hub_sync.formats.enrollment import TOKEN_LIFETIME_DAYS, make_enrollment, read_enrollment, token_hash
from hub_sync.hub.registry import Registry
from hub_sync.core.tls import client_tls
from provisioning.apply import apply_bundle
from provisioning.bundle import make_bundle, read_bundle

ENROLL_PATH = "/api/v1/hub/enroll"
SPENT = ("已经登记过一台设备", "has already enrolled another device")
RACERS = 12


def hub_state(hub) -> tuple:
    """What an enrollment may change: devices, tokens, and every TUF metadata file (names and bytes)."""
    metadata = {p.name: p.read_bytes() for p in sorted((hub.repo_dir / "metadata").iterdir())}
    devices = hub.db.execute("select device_id, school_code, status from devices order by device_id").fetchall()
    tokens = hub.db.execute("select token_hash, used_by, used_at from enrollment_tokens order by token_hash").fetchall()
    return devices, tokens, metadata


def appliance_at(tmp_path, name: str) -> Appliance:
    return Appliance.open(EdgeConfig.load(tmp_path / name, {"free_space_reserve_mb": 1, "advertise": False}))


def test_a_token_enrolls_one_device_and_signs_no_new_metadata(env):
    devices, tokens, metadata = hub_state(env.hub)
    assert devices == [] and [t[1] for t in tokens] == [None]
    enroll_now(env.app)
    devices, tokens, after = hub_state(env.hub)
    assert devices == [(env.app.device_id, SCHOOL, "active")]
    assert [t[1] for t in tokens] == [env.app.device_id]
    assert after == metadata                          # the school's index was published at 'provision make'
    enroll_now(env.app)                               # the same device again (its first answer was lost)
    assert hub_state(env.hub) == (devices, tokens, after)


def test_a_second_device_with_a_used_bundle_is_refused_and_nothing_changes(env, tmp_path):
    enroll_now(env.app)
    before = hub_state(env.hub)
    thief = appliance_at(tmp_path, "thief")
    try:
        apply_bundle(thief, env.tmp / "bundle")       # the same stick, in another box
        with pytest.raises(DeviceError) as refused:
            enroll_now(thief)
        assert SPENT[0] in refused.value.zh and SPENT[1] in refused.value.en
        assert "provision make" in refused.value.en
    finally:
        thief.close()
    assert hub_state(env.hub) == before
    # the technician's command says it in one line and exits 1
    out = CliRunner().invoke(main, ["provision", "apply", str(env.tmp / "bundle"), "--data", str(tmp_path / "thief2")])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert SPENT[0] in out.output and SPENT[1] in out.output
    assert out.output.index(SPENT[0]) < out.output.index(SPENT[1])
    assert hub_state(env.hub) == before


def test_an_expired_token_is_refused_and_nothing_changes(env, tmp_path):
    make_bundle(env.hub, OTHER_SCHOOL, "青山小学", env.hub_url, env.rsync_url, tmp_path / "old", token_days=0)
    late = appliance_at(tmp_path, "late")
    try:
        bundle, _ = apply_bundle(late, tmp_path / "old")
        assert bundle.token_expires_at <= time.time()  # the expiry travels signed in the bundle
        before = hub_state(env.hub)
        with pytest.raises(DeviceError) as refused:
            enroll_now(late)
    finally:
        late.close()
    assert "过期" in refused.value.zh and "expired on" in refused.value.en and "provision make" in refused.value.en
    assert hub_state(env.hub) == before


def test_parallel_enrollments_with_one_token_enroll_exactly_one_device(env, tmp_path):
    make_bundle(env.hub, OTHER_SCHOOL, "青山小学", env.hub_url, env.rsync_url, tmp_path / "b2")
    token = read_bundle(tmp_path / "b2").token
    requests = [make_enrollment(generate_key(tmp_path / f"racer{i}.pem"), f"edge-racer{i:02d}", OTHER_SCHOOL, "青山小学", token)
                for i in range(RACERS)]
    _, _, metadata = hub_state(env.hub)
    start = threading.Barrier(RACERS)

    def post(body: bytes) -> httpx.Response:
        start.wait(10)                                # all at the same instant
        return httpx.post(env.hub_url + ENROLL_PATH, content=body, timeout=30, verify=client_tls())

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(post, requests))
    won = [a.json()["device_id"] for a in answers if a.status_code == 200]
    assert len(won) == 1
    refused = [a for a in answers if a.status_code != 200]
    assert {a.status_code for a in refused} == {403}
    assert all(SPENT[0] in a.json()["error"]["message"] and SPENT[1] in a.json()["error"]["message_en"] for a in refused)
    devices, tokens, after = hub_state(env.hub)
    assert [d[0] for d in devices if d[1] == OTHER_SCHOOL] == won
    assert (token_hash(token), won[0]) in [t[:2] for t in tokens]
    assert after == metadata


def test_the_enrolled_device_is_still_confirmed_after_its_token_expired(hub, tmp_path):
    make_bundle(hub, SCHOOL, "红星小学", "http://127.0.0.1:9", "rsync://127.0.0.1:10/content", tmp_path / "b")
    box = appliance_at(tmp_path, "box")
    try:
        apply_bundle(box, tmp_path / "b")
        request = read_enrollment((box.data_dir / "enrollment-request.json").read_bytes())
    finally:
        box.close()
    registry, th = Registry(hub.db), token_hash(request["token"])
    registry.enroll(request, th)
    later = time.time() + (TOKEN_LIFETIME_DAYS + 1) * 86400
    assert registry.enroll(request, th, now=later).device_id == request["device_id"]  # a stick export resends it
    other = {**request, "device_id": "edge-other"}
    with pytest.raises(DeviceError, match="already enrolled another device"):
        registry.enroll(other, th, now=later)
    assert registry.count() == 1


def test_provision_make_sets_the_token_lifetime_and_refuses_nonsense(hub, tmp_path):
    hub.close()
    args = ["provision", "make", "--hub-data", str(hub.data_dir), "--school-code", SCHOOL, "--school-name", "红星小学",
            "--hub-url", "http://127.0.0.1:9"]
    out = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b"), "--token-days", "3"])
    assert out.exit_code == 0, out.output
    assert "登记令牌只能登记一台设备" in out.output and "The enrollment token enrolls one device, until" in out.output
    expires = read_bundle(tmp_path / "b").token_expires_at
    assert abs(expires - (time.time() + 3 * 86400)) < 60
    assert hub.db.execute("select expires_at from enrollment_tokens").fetchall() == [(expires,)]
    bad = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "c"), "--token-days", "0"])
    assert bad.exit_code == 2 and "--token-days" in bad.output and not (tmp_path / "c").exists()
    assert hub.db.execute("select count(*) from enrollment_tokens").fetchone()[0] == 1
