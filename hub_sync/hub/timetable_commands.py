"""``school-edge hub live ...``: the live lessons' (专递课堂) timetable and the teacher's token.

The group ``live`` is added to the CLI's ``hub`` group by ``hub_sync.hub.commands``;
other live-lesson commands (the media pipeline's) add themselves to ``live`` too.
"""

from __future__ import annotations

from pathlib import Path

import click

from hub_sync.hub.command_options import HUB_DATA, open_hub as _open



@click.group("live")
def live() -> None:
    """直播课（专递课堂）：登记、课表、教师令牌、录播。 Live lessons: register, timetable, teacher token, recording."""


@live.command("schedule")
@HUB_DATA
@click.option("--school", "schools", multiple=True, required=True, help="教学点学校代码（可重复） Teaching point's school code (repeatable)")
@click.option("--lesson", required=True, help="课程编号 Lesson id (letters, digits, -_.)")
@click.option("--start", required=True, help="开始时间 ISO 8601 with zone, e.g. 2026-03-02T08:00:00+08:00")
@click.option("--minutes", type=int, required=True, help="时长（分钟） Length in minutes")
@click.option("--subject", required=True, help="学科 Subject, e.g. 数学")
@click.option("--grade", default="", help="年级 Grade, e.g. 三年级")
@click.option("--teacher", default="", help="主讲教师 Central teacher")
@click.option("--title", default="", help="课题 Title")
def live_schedule(data_dir: Path, schools: tuple[str, ...], **entry) -> None:
    """为教学点排一节直播课（随签名下发消息送达）。 Schedule a live lesson for teaching points (sent with the signed downlink)."""
    from hub_sync.hub.live_timetable import LiveTimetable

    timetable = LiveTimetable(_open(data_dir).db)
    for school in schools:
        seq = timetable.schedule(school, entry)
        click.echo(f"已排课 Scheduled {entry['lesson']} for {school} (消息 message #{seq})")


@live.command("cancel")
@HUB_DATA
@click.option("--school", required=True, help="学校代码 School code")
@click.option("--lesson", required=True, help="课程编号 Lesson id")
def live_cancel(data_dir: Path, school: str, lesson: str) -> None:
    """取消教学点的一节直播课。 Cancel a teaching point's live lesson."""
    from hub_sync.hub.live_timetable import LiveTimetable

    seq = LiveTimetable(_open(data_dir).db).cancel(school, lesson)
    click.echo(f"已取消 Cancelled {lesson} for {school} (消息 message #{seq})")


@live.command("timetable")
@HUB_DATA
@click.option("--school", required=True, help="学校代码 School code")
def live_timetable(data_dir: Path, school: str) -> None:
    """列出教学点的直播课表。 List a teaching point's live timetable."""
    from hub_sync.hub.live_timetable import LiveTimetable

    rows = LiveTimetable(_open(data_dir).db).lessons(school)
    if not rows:
        click.echo(f"学校 {school} 没有直播课 No live lessons for {school}")
    for r in rows:
        click.echo(f"{r['start']}  {r['minutes']:>3} 分钟 min  {r['lesson']:20} {r['subject']} {r['grade']} {r['teacher']} {r['title']}")


@live.command("teacher-token")
@HUB_DATA
@click.option("--lesson", required=True, help="课程编号 Lesson id")
def live_teacher_token(data_dir: Path, lesson: str) -> None:
    """为主讲教师生成本节课的互动页令牌（旧令牌作废）。 A new token for the lesson's teacher page (the old one stops working)."""
    from hub_sync.hub.live_interaction import LiveInteraction

    token = LiveInteraction(_open(data_dir).db).new_teacher_token(lesson)
    click.echo(f"教师令牌 Teacher token: {token}")
    click.echo(f"互动页 Teacher page: /live/{lesson}/teacher （在县平台地址后 on the hub's address）")


def register(group: click.Group) -> None:
    """Add ``live`` to the CLI's ``hub`` group."""
    group.add_command(live)
