"""``school-edge live ...``: the central school's publisher and a teaching point's puller by hand
(the served appliance pulls by itself); see docs/live-lessons.md."""

from __future__ import annotations

import json
import signal
import tempfile
import threading
from pathlib import Path

import click

LESSON = click.option("--lesson", required=True, help="课程编号 Lesson id")


@click.group("live")
def live() -> None:
    """直播课（专递课堂）：主讲端推流、教学点拉流。 Live lessons: publish at the central school, pull at a teaching point."""


@live.command("keygen")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="私钥文件 Private key file to make (0600); the public key goes next to it as .pub.json")
def live_keygen(key_path: Path) -> None:
    """生成主讲端签名密钥。 Make the publisher's signing key."""
    from hub_sync.core.errors import FormatError
    from hub_sync.core.keys import generate_key, public_key_dict

    if key_path.exists():
        raise FormatError(f"{key_path} 已存在，不会覆盖", f"{key_path} exists; not overwritten")
    signer = generate_key(key_path)
    pub = key_path.with_suffix(".pub.json")
    pub.write_text(json.dumps(public_key_dict(signer), indent=1), "utf-8")
    click.echo(f"私钥 Private key: {key_path}\n公钥 Public key (give to the county): {pub}")


@live.command("publish")
@LESSON
@click.option("--hub", "hub_url", required=True, help="县平台地址 Hub URL")
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="主讲端私钥 The publisher's private key")
@click.option("--source", default="testsrc", show_default=True, help="视频源 testsrc | FILE | v4l2[:/dev/videoN]")
@click.option("--slides", "slides_dir", type=click.Path(file_okay=False, path_type=Path),
              help="课件图片文件夹 Folder of slide images (png/jpg/webp), sent as they appear")
@click.option("--seconds", type=float, help="时长（秒），不填则到 Ctrl-C Length in seconds (else until Ctrl-C)")
@click.option("--segment-s", type=float, default=2.0, show_default=True, help="片段长度（秒） Segment length")
@click.option("--height", type=int, default=360, show_default=True, help="最高档画面高度 Top rung's height (lines)")
@click.option("--kbps", default="450,200", show_default=True, help="两档视频码率 The two video rungs' kbit/s")
@click.option("--work", "work_dir", type=click.Path(file_okay=False, path_type=Path),
              help="编码输出文件夹 Folder for ffmpeg's output (a temporary one if left out)")
def live_publish(lesson: str, hub_url: str, key_path: Path, source: str, slides_dir: Path | None,
                 seconds: float | None, segment_s: float, height: int, kbps: str, work_dir: Path | None) -> None:
    """推送一节直播课到县平台。 Publish a live lesson to the hub."""
    from hub_sync.core.errors import FormatError
    from hub_sync.core.keys import load_signer
    from hub_sync.formats.live_manifest import check_lesson_id

    from edge_agent.live.publish import ladder, publish

    check_lesson_id(lesson)
    try:
        top, second = (int(k) for k in kbps.split(","))
    except ValueError as exc:
        raise FormatError("--kbps 应为两个数字，如 450,200", "--kbps must be two numbers, e.g. 450,200") from exc
    signer = load_signer(key_path)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with tempfile.TemporaryDirectory() as tmp:
        publisher = publish(hub_url, lesson, signer, work_dir or Path(tmp), source, seconds, segment_s, slides_dir,
                            ladder(height, (top, second)), stop)
    click.echo(f"直播课已结束 Lesson {lesson} ended: {publisher.sent_index + 1} 个片段 segments, "
               f"{publisher.seq} 次更新 updates")


@live.command("pull")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("school-edge-data"),
              show_default=True, help="数据目录 Data folder of the appliance")
@LESSON
@click.option("--hub", "hub_url", default="", help="县平台地址 Hub URL (default: the appliance's hub_url setting)")
def live_pull(data_dir: Path, lesson: str, hub_url: str) -> None:
    """拉取一节直播课直到录播入库。 Pull a live lesson until its recording is in the catalogue."""
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig
    from edge_agent.live.job import catalogue_recording
    from edge_agent.live.puller import pull_lesson
    from edge_agent.sync.hub_key import load_hub_key

    appliance = Appliance.open(EdgeConfig.load(data_dir))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        done = pull_lesson(appliance.data_dir, hub_url or appliance.config.hub_url, lesson,
                           load_hub_key(appliance.data_dir), catalogue_recording(appliance), stop)
    finally:
        appliance.close()
    click.echo(f"录播已入库 Recorded: live-{lesson}" if done else "已停止 Stopped")


def register(main: click.Group) -> None:
    """Add the ``live`` group to the CLI."""
    main.add_command(live)
