"""``school-edge hub live lesson|record``: the media side of live lessons (专递课堂) at the hub.

``lesson`` registers a lesson and the publisher key allowed to send it (the hub signs the
record); ``record`` turns a finished lesson into a channel resource, so the normal signed sync
carries it to schools that were offline. Added to the ``hub live`` group by ``register``.
"""

from __future__ import annotations

import datetime
import json
import tempfile
from pathlib import Path

import click

from hub_sync.hub.command_options import HUB_DATA



def _relay(data_dir: Path):
    from hub_sync.hub.hub import Hub
    from hub_sync.hub.live_relay import LiveRelay

    hub = Hub.open(data_dir)
    return hub, LiveRelay(hub.data_dir, hub.online_signer)


@click.command("lesson")
@HUB_DATA
@click.argument("lesson")
@click.option("--publisher-key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="主讲端公钥 The publisher's public key (KEY.pub.json from 'school-edge live keygen')")
@click.option("--title", required=True, help="课题 Title")
@click.option("--subject", required=True, help="学科 Subject, e.g. 数学")
@click.option("--grade", default="", help="年级 Grade, e.g. 三年级")
@click.option("--teacher", default="", help="主讲教师 Teacher")
@click.option("--date", "date_", default="", help="日期 Date, YYYY-MM-DD (today if left out)")
def live_lesson(data_dir: Path, lesson: str, publisher_key: Path, date_: str, **meta: str) -> None:
    """登记一节直播课及其主讲端公钥（平台签名）。 Register a live lesson and its publisher's key (signed by the hub)."""
    from hub_sync.core.errors import FormatError
    from hub_sync.formats.live_manifest import Lesson

    try:
        key = json.loads(publisher_key.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise FormatError(f"无法读取公钥 {publisher_key}", f"cannot read public key {publisher_key}: {exc}") from exc
    _, relay = _relay(data_dir)
    relay.register(Lesson(lesson=lesson, date=date_ or datetime.date.today().isoformat(), publisher_key=key, **meta))
    click.echo(f"已登记直播课 Registered live lesson {lesson}")


@click.command("record")
@HUB_DATA
@click.argument("lesson")
@click.option("--channel", required=True, help="频道 Channel id")
@click.option("--id", "resource_id", default="", help="资源编号 Resource id (default: live-<lesson>)")
def live_record(data_dir: Path, lesson: str, channel: str, resource_id: str) -> None:
    """把已结束的直播课录播加入频道（发布后下发）。 Add a finished lesson's recording to a channel (sent after publish)."""
    from hub_sync.hub.channels import Channels
    from hub_sync.hub.publisher import add_files

    hub, relay = _relay(data_dir)
    record = relay.record(lesson)
    chans = Channels(hub.db)
    chans.get(channel)
    with tempfile.TemporaryDirectory(dir=hub.data_dir) as tmp:
        mp4 = relay.make_recording(lesson, Path(tmp) / f"{lesson}.mp4")
        entries = add_files(hub, [mp4])
    rid = resource_id or f"live-{lesson}"
    chans.put_resource(rid, channel, {"title": f"录播 {record.title}", "kind": "video", "subject": record.subject,
                                      "grade": record.grade, "keywords": f"录播 专递课堂 {record.teacher} {record.date}",
                                      "description": f"专递课堂录播 {record.teacher} {record.date}"},
                       entries)
    click.echo(f"已加入 Added {rid} to {channel}; 运行 run 'school-edge hub publish --data {data_dir} --channel {channel}'")


COMMANDS = (live_lesson, live_record)


def register(group: click.Group) -> None:
    """Add these commands to the CLI's ``hub live`` group."""
    for cmd in COMMANDS:
        group.add_command(cmd)
