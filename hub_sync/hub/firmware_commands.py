"""``school-edge hub firmware ...``: publish, stage, watch and stop updates of the
appliance software (the library side is ``hub_sync.hub.firmware_repo``)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from hub_sync.hub.command_options import HUB_DATA as DATA, open_hub as _open



def _schools(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


@click.group("firmware")
def firmware() -> None:
    """学校设备软件更新：发布、分批、查看、暂停。 Appliance software updates: publish, stage, watch, stop."""


@firmware.command("publish")
@DATA
@click.argument("release_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--schools", default=None, help="只给这些学校（逗号分隔） Only these schools (comma list)")
@click.option("--percent", type=int, default=None, help="只给这个百分比的设备（按设备编号固定选取） Only this percentage of devices (stable by device id)")
@click.option("--downgrade", is_flag=True, help="签为降级（退回旧版本） Sign as a downgrade (going back to an older version)")
def firmware_publish(data_dir: Path, release_dir: Path, schools: str | None, percent: int | None, downgrade: bool) -> None:
    """检查并签名发布一个软件版本（默认给所有设备）。 Check, sign and publish a release (to every device unless staged)."""
    from hub_sync.hub.firmware_repo import publish_release

    out = publish_release(_open(data_dir), release_dir, _schools(schools), percent, downgrade)
    scope = (f"学校 schools {','.join(_schools(schools) or [])} " if schools else "") + \
        (f"{percent}% 的设备 of devices" if percent is not None else "")
    click.echo(f"已发布 Published {out['version']} ({out['files']} 个文件 files, {out['size']} bytes) -> "
               f"{scope.strip() or '所有设备 every device'}")


@firmware.command("widen")
@DATA
@click.option("--version", default=None, help="分批中的版本（默认最新） Staged version (default: the newest)")
@click.option("--schools", default=None, help="再加这些学校 Add these schools (comma list)")
@click.option("--percent", type=int, default=None, help="提高到这个百分比（100 = 所有设备） Raise to this percentage (100: every device)")
def firmware_widen(data_dir: Path, version: str | None, schools: str | None, percent: int | None) -> None:
    """扩大分批发布的范围。 Widen a staged release."""
    from hub_sync.core.errors import FormatError
    from hub_sync.formats.firmware_rollout import describe
    from hub_sync.hub.firmware_repo import widen_rollout

    if schools is None and percent is None:
        raise FormatError("请用 --schools 或 --percent 说明扩大到哪里", "give --schools or --percent to widen to")
    for line in describe(widen_rollout(_open(data_dir), version, _schools(schools), percent)):
        click.echo(line)


@firmware.command("pause")
@DATA
def firmware_pause(data_dir: Path) -> None:
    """暂停：设备不再开始新的更新。 Stop: no appliance starts an update."""
    from hub_sync.hub.firmware_repo import pause

    pause(_open(data_dir), True)
    click.echo("已暂停软件更新 Updates paused; 设备下次同步时收到 appliances see it at their next sync")


@firmware.command("resume")
@DATA
def firmware_resume(data_dir: Path) -> None:
    """恢复暂停的更新。 Resume paused updates."""
    from hub_sync.hub.firmware_repo import pause

    pause(_open(data_dir), False)
    click.echo("已恢复软件更新 Updates resumed")


@firmware.command("status")
@DATA
def firmware_status(data_dir: Path) -> None:
    """发布规则、版本和各版本的设备数。 Rules, releases and devices per version."""
    from hub_sync.formats.firmware_rollout import describe
    from hub_sync.hub.firmware_repo import status

    st = status(_open(data_dir))
    for line in describe(st["rules"]):
        click.echo(line)
    for r in st["releases"]:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["published_at"]))
        click.echo(f"  {r['version']:12} {r['files']:4} 个文件 files {r['size']:>12} bytes  {when}"
                   + ("  降级 downgrade" if r["downgrade"] else ""))
    counts = ", ".join(f"{v}: {n}" for v, n in sorted(st["devices_per_version"].items())) or "-"
    click.echo(f"设备版本 devices per version: {counts}")


@firmware.command("export")
@DATA
@click.argument("version")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="输出目录（U盘上） Output folder (on a stick)")
def firmware_export(data_dir: Path, version: str, out_dir: Path) -> None:
    """把签名的发布写到目录（带到学校的U盘）。 Write a signed release folder (for a USB stick)."""
    from hub_sync.hub.firmware_repo import export_release

    folder = export_release(_open(data_dir), version, out_dir)
    click.echo(f"已导出 Exported {version} -> {folder}; 在设备上运行 on the appliance run "
               f"'school-edge firmware install {folder}' 或 or 'school-edge edge import-usb'")
