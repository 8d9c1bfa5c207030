"""``school-edge``: the one command technicians and scripts use.

A thin layer over the library: each command opens the library object, calls one
method and turns the packages' expected errors into one clear line and exit 1.
Subcommand groups of the other packages are added at the bottom.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from hub_sync.core.errors import Problem

from firmware import __version__
from edge_agent.config import EdgeConfig


class _Group(click.Group):
    """A click group that prints expected errors as one line, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Problem as exc:
            click.echo(f"错误 Error: {exc}", err=True)
            ctx.exit(1)


def data_option(f):
    return click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("school-edge-data"),
                        show_default=True, help="数据目录 Data folder of the appliance")(f)


def open_appliance(data_dir: Path, **overrides):
    from edge_agent.appliance import Appliance

    return Appliance.open(EdgeConfig.load(data_dir, {k: v for k, v in overrides.items() if v is not None}))


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="school-edge")
@click.option("-v", "--verbose", is_flag=True, help="详细日志 Verbose logs")
def main(verbose: bool) -> None:
    """school-edge：学校边缘服务器与县级平台。 School appliance and county hub."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("zeroconf", "apscheduler", "sh", "tuf", "securesystemslib", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.group(cls=_Group)
def edge() -> None:
    """学校设备 The school appliance."""


@edge.command("serve")
@data_option
@click.option("--host", default=None, help="监听地址 Address (default 127.0.0.1; 0.0.0.0 for the LAN)")
@click.option("--port", type=int, default=None, help="端口 Port (default 8080)")
@click.option("--no-announce", is_flag=True, help="不做 zeroconf 广播 Do not announce on the LAN")
def edge_serve(data_dir: Path, host: str | None, port: int | None, no_announce: bool) -> None:
    """在局域网上提供资源和学习空间。 Serve resources and learning spaces on the LAN."""
    from hub_sync.core.wsgi_server import reexec_with_malloc_tunables

    reexec_with_malloc_tunables(("school-edge", "edge_agent/cli.py"))  # glibc reads them only at start
    from edge_agent.wiring import serve_appliance

    appliance = open_appliance(data_dir, host=host, port=port, advertise=False if no_announce else None)
    serve_appliance(appliance, banner=True)


@edge.command("status")
@data_option
@click.option("--json", "as_json", is_flag=True, help="输出 JSON Print JSON")
def edge_status(data_dir: Path, as_json: bool) -> None:
    """显示设备状态。 Show the appliance's state."""
    status = open_appliance(data_dir).status()
    if as_json:
        click.echo(json.dumps(status, ensure_ascii=False, indent=2))
        return
    for key, value in status.items():
        click.echo(f"{key:26} {value}")


@edge.command("discover")
@click.option("--seconds", type=float, default=2.0, show_default=True, help="搜索时长 How long to listen")
@click.option("--interfaces", default="all", show_default=True, help="网卡地址 Interfaces to browse on")
def edge_discover(seconds: float, interfaces: str) -> None:
    """列出局域网上的设备。 List the appliances on the LAN."""
    from edge_agent.lan_announce import discover

    found = discover(seconds, interfaces)
    if not found:
        click.echo("局域网上没有发现设备 No appliance found on the LAN")
        return
    for a in found:
        click.echo(f"{a.role:5} {a.school_code or '-':12} {a.device_id:18} {a.url}")


@edge.command("add-resource")
@data_option
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", required=True, help="标题 Title")
@click.option("--kind", required=True, help="类型 video/audio/document/html/image/exercise")
@click.option("--id", "resource_id", default=None, help="资源编号 Resource id (default: generated)")
@click.option("--stage", default="", help="学段 e.g. 小学")
@click.option("--grade", default="", help="年级 e.g. 一年级")
@click.option("--subject", default="", help="学科 e.g. 语文")
@click.option("--edition", default="", help="教材版本 e.g. 统编版")
@click.option("--chapter", default="", help="章节/单元")
@click.option("--source", default="school", show_default=True, help="来源 national/provincial/county/school/teacher")
def edge_add_resource(data_dir: Path, files: tuple[Path, ...], resource_id: str | None, **meta) -> None:
    """把本地文件加入本校资源库。 Add local files to the school library."""
    from edge_agent.library.importer import import_files

    appliance = open_appliance(data_dir)
    resource = import_files(appliance, list(files), resource_id=resource_id, **meta)
    click.echo(f"已加入 Added {resource.id}: {resource.title} ({len(resource.files)} 个文件 files)")


@edge.command("verify")
@data_option
def edge_verify(data_dir: Path) -> None:
    """重新校验全部文件。 Re-check every stored file against its hash."""
    bad = open_appliance(data_dir).integrity.scrub()
    if bad:
        for sha in bad:
            click.echo(f"损坏 corrupt: {sha}")
        raise click.exceptions.Exit(1)
    click.echo("全部文件完好 All files are intact")


@edge.command("export-xapi")
@data_option
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="输出文件 Output file (default: standard output)")
def edge_export_xapi(data_dir: Path, out: Path | None) -> None:
    """把未上传的使用记录导出为 xAPI 语句。 Export the journal (events not yet pruned) as xAPI statements."""
    from edge_agent.sync.xapi_export import export_xapi, export_xapi_file

    appliance = open_appliance(data_dir)
    if out is None:
        export_xapi(appliance, sys.stdout)
        return
    count = export_xapi_file(appliance, out)
    click.echo(f"已导出 Exported {count} 条 xAPI 语句 statements to {out}")


@main.command("demo")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="数据目录 Data folder (default: a fresh temporary folder)")
@click.option("--port", type=int, default=8080, show_default=True, help="学校设备端口 Appliance port")
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址 Address")
def demo(data_dir: Path | None, port: int, host: str) -> None:
    """演示：带样例资源的学校设备。 Demo: an appliance with a sample library on loopback."""
    from edge_agent.demo.run import run_demo

    run_demo(data_dir, host=host, port=port)


@main.group(cls=_Group)
def hub() -> None:
    """县级平台 The county hub."""


# Command groups of the other packages
from hub_sync.hub.commands import register as _register_hub_commands  # noqa: E402
from provisioning.cli import provision as _provision_group  # noqa: E402

from edge_agent.sync_cli import register as _register_sync_commands  # noqa: E402

_register_hub_commands(hub)
from hub_sync.hub.lrs_commands import register as _register_lrs_commands  # noqa: E402

_register_lrs_commands(hub)
from hub_sync.hub.relay_commands import register as _register_relay_commands  # noqa: E402

_register_relay_commands(hub)
from hub_sync.hub.timetable_commands import register as _register_live_commands  # noqa: E402

_register_live_commands(hub)
from hub_sync.hub.live_media_commands import register as _register_live_media_commands  # noqa: E402

_register_live_media_commands(hub.commands["live"])
from hub_sync.hub.account_commands import hub_user as _hub_user_group  # noqa: E402

hub.add_command(_hub_user_group)
from hub_sync.hub.firmware_commands import firmware as _hub_firmware_group  # noqa: E402

hub.add_command(_hub_firmware_group)
from hub_sync.hub.mirror_commands import mirror as _hub_mirror_group  # noqa: E402

hub.add_command(_hub_mirror_group)
from provisioning.usb_cli import register as _register_usb_commands  # noqa: E402

_register_usb_commands(edge, hub)
_register_sync_commands(edge)
from edge_agent.spaces_cli import register as _register_space_commands  # noqa: E402

_register_space_commands(edge)
main.add_command(_provision_group)
from edge_agent.firmware_cli import register as _register_firmware_commands  # noqa: E402

_register_firmware_commands(main)
from edge_agent.live_cli import register as _register_live_cli  # noqa: E402

_register_live_cli(main)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
