"""Live lessons (专递课堂): what the appliance trusts and keeps. A real publisher (ffmpeg's test
source) sends a short lesson to a real hub on 127.0.0.1; the appliance's puller verifies every
segment against the publisher's signed manifests, refuses a swapped one, and puts the finished
lesson in the catalogue as a 录播 resource."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading

import httpx
import pytest

from hub_sync.core.errors import FormatError, SignatureError
from hub_sync.core.keys import generate_key
from hub_sync.formats.live_manifest import LiveFile, Manifest, Rung, open_manifest, seal_manifest
from edge_agent.live.job import catalogue_recording
from edge_agent.live.puller import Puller
from edge_agent.live.store import LiveStore

from hub_sync.core.processes import wait_until

LESSON = "math-0301"
RUNGS = [Rung("v500", 330000, "avc1.42c01e,mp4a.40.2", "320x180"), Rung("a48", 52800, "mp4a.40.2")]


def _manifest(seq: int = 1, files=None, lesson: str = LESSON) -> Manifest:
    return Manifest(lesson, seq, 1.0, RUNGS, files or [LiveFile("v500/00000.ts", "0" * 64, 10, "v500", 0, 1.0)])


def test_a_manifest_opens_only_with_its_key_lesson_and_number(tmp_path):
    signer, other = generate_key(tmp_path / "a.pem"), generate_key(tmp_path / "b.pem")
    signed = seal_manifest(_manifest(3), signer)
    assert open_manifest(signed, signer.public_key, LESSON, 3).files[0].path == "v500/00000.ts"
    with pytest.raises(SignatureError):
        open_manifest(signed, other.public_key, LESSON, 3)  # another publisher
    with pytest.raises(SignatureError, match="expected"):
        open_manifest(signed, signer.public_key, LESSON, 4)  # replayed as another update
    with pytest.raises(SignatureError, match="expected"):
        open_manifest(signed, signer.public_key, "math-0302", 3)  # replayed for another lesson


@pytest.mark.parametrize("path", ["../etc/passwd", "v500/1.ts", "slides/../x.png", "v250/00000.ts", "v500/00000.mp4"])
def test_a_manifest_naming_a_path_outside_its_ladder_is_never_signed(tmp_path, path):
    signer = generate_key(tmp_path / "a.pem")
    with pytest.raises(FormatError):
        seal_manifest(_manifest(files=[LiveFile(path, "0" * 64, 10, "v500", 0, 1.0)]), signer)


@pytest.mark.slow
def test_the_hub_refuses_an_update_not_signed_by_the_lessons_publisher(live_hub, tmp_path):
    intruder = generate_key(tmp_path / "intruder.pem")
    data = b"not the lesson"
    f = LiveFile("v500/00000.ts", hashlib.sha256(data).hexdigest(), len(data), "v500", 0, 1.0)
    answer = httpx.post(f"{live_hub.url}/api/v1/hub/live/{LESSON}/update", trust_env=False,
                        files=[("manifest", ("m.json", seal_manifest(_manifest(files=[f]), intruder))),
                               ("v500/00000.ts", ("00000.ts", data))])
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "bad_signature"
    assert live_hub.relay.head(LESSON) == {"seq": 0, "ended": False}  # nothing changed
    assert not (live_hub.relay.folder(LESSON) / "v500").exists()


@pytest.mark.slow
def test_a_swapped_segment_is_refused_and_the_lesson_is_recorded_once_the_real_one_arrives(live_hub, appliance):
    live_hub.publish(5)
    head = live_hub.relay.head(LESSON)
    assert head["ended"] and head["seq"] >= 2
    # a proxy (or a broken relay) swaps segment 2 of the top rung
    swapped = live_hub.relay.path(LESSON, "v500/00002.ts")
    original = swapped.read_bytes()
    swapped.write_bytes(original[:-188] + bytes(188))
    store = LiveStore(appliance.data_dir)
    puller = Puller(store, live_hub.url, LESSON, live_hub.hub.online_signer.public_key, catalogue_recording(appliance))
    stop = threading.Event()
    try:
        assert puller.round(stop) is False
        lan = appliance.data_dir / "live" / LESSON
        assert not (lan / "v500" / "00002.ts").exists()  # never written, so never served
        status = json.loads((lan / "status.json").read_text("utf-8"))
        assert status["held_index"] == 1 and status["recording"] is None
        assert "00002.ts" not in (lan / "site.m3u8").read_text("utf-8")  # the LAN plays up to the hole
        assert "00001.ts" in (lan / "site.m3u8").read_text("utf-8")
        assert appliance.catalogue.count() == 0
        swapped.write_bytes(original)  # the real segment is back
        wait_until(lambda: puller.round(stop), 30, "the lesson to be recorded")
    finally:
        puller.close()
    assert (lan / "v500" / "00002.ts").read_bytes() == original
    playlist = (lan / "site.m3u8").read_text("utf-8")
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST") and "#EXT-X-DISCONTINUITY" not in playlist
    resource = appliance.catalogue.get(f"live-{LESSON}")
    assert resource.kind == "video" and resource.subject == "数学" and resource.grade == "三年级"
    assert "录播" in resource.keywords and "王老师" in resource.keywords and "2026-03-01" in resource.keywords
    assert resource.files[0].mime == "video/mp4" and resource.files[0].size > 50_000
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name",
                                       "-of", "json", str(appliance.store.path_for(resource.files[0].sha256))],
                                      capture_output=True, text=True, check=True, timeout=30).stdout)
    assert {st["codec_name"] for st in probe["streams"]} == {"h264", "aac"}
    assert 4.0 <= float(probe["format"]["duration"]) <= 5.5  # the whole lesson, the swapped second included
    assert json.loads((lan / "status.json").read_text("utf-8"))["state"] == "recorded"


@pytest.mark.slow
def test_the_county_adds_a_finished_lesson_to_a_channel_and_refuses_an_unfinished_one(live_hub):
    from click.testing import CliRunner

    from edge_agent.cli import main
    from hub_sync.hub.channels import Channels

    chans = Channels(live_hub.hub.db)
    chans.put_channel("recorded", "录播课", False)

    def record():
        return CliRunner().invoke(main, ["hub", "live", "record", "--data", str(live_hub.hub.data_dir), LESSON,
                                         "--channel", "recorded"])

    early = record()
    assert early.exit_code == 1 and early.output.count("\n") == 1 and "还没有结束" in early.output
    assert chans.resources("recorded") == []  # nothing changed
    live_hub.publish(3)
    done = record()
    assert done.exit_code == 0, done.output
    [(rid, meta, files)] = chans.resources("recorded")
    assert rid == f"live-{LESSON}" and meta["kind"] == "video" and meta["subject"] == "数学"
    assert "录播" in meta["keywords"] and files[0]["mime"] == "video/mp4"
    assert live_hub.hub.store.path_for(files[0]["sha256"]).stat().st_size == files[0]["size"] > 20_000


def test_without_nginx_the_app_serves_the_live_folder_and_nothing_beside_it(appliance):
    from edge_agent.wiring import create_served_app

    lesson_dir = appliance.data_dir / "live" / LESSON
    (lesson_dir / "v500").mkdir(parents=True)
    (lesson_dir / "site.m3u8").write_text("#EXTM3U\n", "utf-8")
    (lesson_dir / "v500" / "00000.ts").write_bytes(b"\x47" * 188)
    client = create_served_app(appliance.config, appliance=appliance).test_client()
    with client.get(f"/live/{LESSON}/site.m3u8") as playlist:
        assert playlist.status_code == 200 and playlist.mimetype == "application/vnd.apple.mpegurl"
        assert "max-age=0" in playlist.headers["Cache-Control"]
    with client.get(f"/live/{LESSON}/v500/00000.ts") as segment:
        assert segment.data == b"\x47" * 188
    for outside in ("/live/../settings.json", "/live/%2e%2e/settings.json", f"/live/{LESSON}/../../settings.json"):
        with client.get(outside) as refused:
            assert refused.status_code == 404


def _cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_agent.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s)


@pytest.mark.slow
def test_a_teaching_point_pulls_a_lesson_by_hand_into_its_catalogue(live_hub, tmp_path):
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig

    live_hub.publish(3)
    data = live_hub.appliance_data(tmp_path / "edge")
    done = _cli("live", "pull", "--data", str(data), "--lesson", LESSON)
    assert done.returncode == 0 and f"live-{LESSON}" in done.stdout, done.stdout + done.stderr
    app = Appliance.open(EdgeConfig.load(data))
    try:
        assert app.catalogue.get(f"live-{LESSON}").title == "录播 分数的初步认识"
    finally:
        app.close()


@pytest.mark.slow
def test_live_commands_refuse_bad_input_in_one_line_and_change_nothing(live_hub, tmp_path):
    key = tmp_path / "k.pem"
    made = _cli("live", "keygen", "--key", str(key))
    assert made.returncode == 0 and key.with_suffix(".pub.json").is_file()
    before = key.read_bytes()
    again = _cli("live", "keygen", "--key", str(key))
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "已存在" in again.stderr
    assert key.read_bytes() == before
    bad_ladder = _cli("live", "publish", "--lesson", LESSON, "--hub", live_hub.url, "--key", str(live_hub.key),
                      "--kbps", "fast")
    assert bad_ladder.returncode == 1 and bad_ladder.stderr.count("\n") == 1 and "--kbps" in bad_ladder.stderr
    bad_id = _cli("live", "publish", "--lesson", "../x", "--hub", live_hub.url, "--key", str(live_hub.key))
    assert bad_id.returncode == 1 and bad_id.stderr.count("\n") == 1 and "课程编号无效" in bad_id.stderr
    assert live_hub.relay.head(LESSON) == {"seq": 0, "ended": False}  # nothing reached the hub
    untrusting = tmp_path / "unprovisioned"
    pull = _cli("live", "pull", "--data", str(untrusting), "--lesson", LESSON, "--hub", live_hub.url)
    assert pull.returncode == 1 and pull.stderr.count("\n") == 1 and "provision" in pull.stderr
    assert not (untrusting / "live").exists() and not (untrusting / "live-state").exists()
