"""Command line of USB sticks: ``provision make --stick``, ``provision apply STICK``,
``edge export-usb|import-usb DIR`` and ``hub import-usb DIR``.

The provision commands (``provisioning.cli``) take the extra options through
``usb_make_options`` / ``usb_apply_options`` and hand over to ``make_stick_cli`` /
``apply_stick_cli``; the edge and hub commands are added by ``register``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hub_sync.core.const import MIB

from provisioning.stick import stick_io
from provisioning.errors import UsbError

DATA = click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("school-edge-data"),
                    show_default=True, help="数据目录 Data folder of the appliance")


def _passphrase(passphrase_file: Path | None, prompt: bool, confirm: bool = False) -> str | None:
    if passphrase_file is not None:
        return passphrase_file.read_text("utf-8").strip()
    if prompt:
        return click.prompt("花名册口令 Roster passphrase", hide_input=True, confirmation_prompt=confirm)
    return None


def usb_make_options(f):
    """The stick options of ``provision make``."""
    options = [
        click.option("--stick", is_flag=True, help="--out 是U盘根目录：写入完整的U盘（花名册、资源包等） --out is a USB stick: write the full stick"),
        click.option("--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="花名册 CSV（Excel 另存的 GBK 或 UTF-8） Roster CSV as Excel saves it"),
        click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="花名册口令文件（不给则提示输入） File with the roster passphrase (prompted if absent)"),
        click.option("--teaching-point", "teaching_points", multiple=True, help="教学点名称（可多次） Teaching point (repeatable)"),
        click.option("--timezone", "timezone_name", default="Asia/Shanghai", show_default=True, help="时区 Time zone"),
        click.option("--sync-window", default="22:00-06:00", show_default=True, help="同步时段 Sync window"),
        click.option("--bwlimit", "bwlimit_kbps", type=int, default=1500, show_default=True, help="带宽上限 KiB/s Bandwidth cap"),
        click.option("--content/--no-content", default=True, show_default=True, help="写入初始资源包 Write the initial content pack"),
        click.option("--valid-days", type=int, default=30, show_default=True, help="有效天数 Days the stick stays valid"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_stick_cli(hub_data: Path, school_code: str, school_name: str, hub_url: str, rsync_url: str, out_dir: Path,
                   roster: Path | None, passphrase_file: Path | None, **options) -> None:
    """``provision make --stick``: the whole stick, with progress."""
    from hub_sync.hub import Hub

    from provisioning.usb_provision import make_stick

    passphrase = _passphrase(passphrase_file, roster is not None, confirm=True)
    hub = Hub.open(hub_data)
    try:
        with click.progressbar(length=1, label="写入资源包 writing content", show_pos=False) as bar:
            def progress(done: int, total: int) -> None:
                bar.length = max(total, 1)
                bar.update(done - bar.pos)

            with stick_io(out_dir):
                report = make_stick(hub, out_dir, school_code, school_name, hub_url, rsync_url,
                                    roster=roster.read_bytes() if roster else None, passphrase=passphrase,
                                    progress=progress, **options)
    finally:
        hub.close()
    click.echo(f"U盘已制作 Stick written: {report.folder}")
    click.echo(f"  花名册 roster: {'已加密 encrypted' if report.roster else '无 none'}; "
               f"资源 content: {report.content_files} files, {report.bytes_written} bytes")


def usb_apply_options(f):
    """The stick options of ``provision apply``."""
    options = [
        click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="花名册口令文件（不给则提示输入） File with the roster passphrase (prompted if absent)"),
        click.option("--school", default=None, help="U盘上有多所学校时选择 School code, when the stick holds several"),
        click.option("--dry-run", is_flag=True, help="只显示将要做的事 Only show what would be done"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def is_stick(folder: Path) -> bool:
    """A stick (school-edge/ layout) rather than a bare bundle folder."""
    from provisioning.stick import ROOT

    return (Path(folder) / ROOT).is_dir() and not (Path(folder) / "bundle.json").is_file()


def apply_stick_cli(stick_path: Path, data_dir: Path, passphrase_file: Path | None, school: str | None,
                    dry_run: bool, no_enroll: bool = True) -> None:
    """``provision apply STICK``: show the plan, then apply it in one transaction."""
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig
    from hub_sync.core.errors import Problem

    from provisioning.usb_apply import apply_stick, plan_stick

    appliance = Appliance.open(EdgeConfig.load(data_dir))
    try:
        plan = plan_stick(appliance, stick_path, school)
        click.echo(f"U盘：学校 School {plan['school_code']} {plan['school_name']}, 平台 hub {plan['hub_url']}")
        for action in plan["actions"]:
            click.echo(f"  - {action}")
        if dry_run or plan["already_applied"]:
            return
        passphrase = _passphrase(passphrase_file, plan["needs_passphrase"])
        try:
            with click.progressbar(length=max((plan["content"] or {}).get("bytes", 0), 1), label="导入资源 importing content") as bar:
                with stick_io(stick_path):
                    summary = apply_stick(appliance, stick_path, passphrase, school, progress=bar.update)
        except Problem as exc:
            for p in exc.details.get("problems", []):  # a roster: every problem, by line
                click.echo(f"  第 {p['line']} 行 line {p['line']}: {p['message']} ({p['message_en']})", err=True)
            raise
        click.echo(f"已开通 Provisioned {summary['device_id']} for {summary['school_code']} {summary['school_name']}")
        if summary.get("roster"):
            r = summary["roster"]
            click.echo(f"  名单 roster: {r['created']} created, {r['updated']} updated, classes {', '.join(r['classes_created']) or '-'}")
            for p in r.get("staff_passwords", []):
                click.echo(f"  初始密码 initial password {p['number']} {p['name']}: {p['password']}")
        if summary.get("content"):
            c = summary["content"]
            click.echo(f"  资源 content: {c['resources']} resources, {c['bytes_copied']} bytes copied")
        if summary.get("firmware"):
            f = summary["firmware"]
            click.echo(f"  软件 software {f['version']}: {f.get('refused') or f.get('skipped') or f.get('action')}")
        click.echo(f"  登记请求已写回U盘 enrollment request written to the stick: {summary['enrollment_request']}")
    finally:
        appliance.close()


@click.command("export-usb")
@click.argument("stick_path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@DATA
def edge_export_usb(stick_path: Path, data_dir: Path) -> None:
    """把使用数据和教师上传写到U盘（加密给县平台）。 Write usage and uploads to a stick, encrypted to the hub."""
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig

    from provisioning.sneakernet import export_usb

    appliance = Appliance.open(EdgeConfig.load(data_dir))
    try:
        with stick_io(stick_path):
            result = export_usb(appliance, stick_path, progress=click.echo)
    finally:
        appliance.close()
    if result["folder"] is None:
        click.echo("没有需要导出的数据 Nothing to export")


@click.command("import-usb")
@click.argument("stick_path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@DATA
def edge_import_usb(stick_path: Path, data_dir: Path) -> None:
    """从U盘导入确认和资源包。 Apply acknowledgements and the content pack from a stick."""
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig

    from provisioning.sneakernet import import_usb

    appliance = Appliance.open(EdgeConfig.load(data_dir))
    try:
        copied = [0]

        def progress(n: int) -> None:
            before, copied[0] = copied[0], copied[0] + n
            if copied[0] // (64 << 20) > before // (64 << 20):  # a line every 64 MiB
                click.echo(f"  资源 content: {copied[0] / MIB:.0f} MB")

        with stick_io(stick_path):
            report = import_usb(appliance, stick_path, progress=progress)
    finally:
        appliance.close()
    firmware = report.get("firmware")
    if firmware is not None:
        state = firmware.get("refused") or firmware.get("skipped") or firmware.get("action")
        click.echo(f"软件 software {firmware['version']}: {state}")
    if "usage" not in report:  # a stick with only a software release
        return
    usage, content = report["usage"], report["content"]
    click.echo(f"确认 acknowledgements: {usage['acks']} applied, {usage['pruned']} events pruned, acked up to {usage['acked_seq']}")
    for line in usage["ignored"]:
        click.echo(f"  已忽略 ignored: {line}")
    msgs = report.get("messages") or {}
    if msgs.get("applied") or msgs.get("failed"):
        click.echo(f"县平台消息 hub messages: {msgs['applied']} applied, {msgs['failed']} failed")
    if content is None:
        click.echo("U盘上没有资源包 No content pack on the stick")
    elif "ignored" in content:
        click.echo(f"资源包已忽略 content pack ignored: {content['ignored']}")
    elif "skipped" in content:
        click.echo(f"资源包 content pack: {content['skipped']}")
    else:
        click.echo(f"资源 content: {content['resources']} resources, {content['bytes_copied']} bytes copied, "
                   f"catalogue version {content['snapshot_version']}")


@click.command("import-usb")
@click.argument("stick_path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True, help="平台数据目录 Hub data folder")
@click.option("--no-packs", is_flag=True, help="不写资源包 Do not write content packs back")
@click.option("--json", "as_json", is_flag=True, help="输出 JSON Print JSON")
def hub_import_usb_cmd(stick_path: Path, data_dir: Path, no_packs: bool, as_json: bool) -> None:
    """导入U盘上各校的使用数据，写回确认和资源包。 Import schools' exports; write acknowledgements and packs."""
    from hub_sync.hub import Hub

    from provisioning.sneakernet_hub import hub_import_usb

    hub = Hub.open(data_dir)
    try:
        with stick_io(stick_path):
            reports = hub_import_usb(hub, stick_path, packs=not no_packs, progress=None if as_json else click.echo)
    finally:
        hub.close()
    if as_json:
        click.echo(json.dumps(reports, ensure_ascii=False, indent=2))
        return
    for r in reports:
        stored = sum(d["stored"] for d in r["devices"])
        click.echo(f"学校 school {r['school_code']}: {len(r['devices'])} devices, {stored} new events, "
                   f"enrolled {', '.join(sorted(set(r['enrolled']))) or '-'}, problems {len(r['problems'])}")
        for problem in r["problems"]:
            click.echo(f"  问题 problem: {problem}", err=True)
    problems = sum(len(r["problems"]) for r in reports)
    if problems:
        raise UsbError(f"有 {problems} 个问题（见上），其余已导入；处理后再运行一次即可继续",
                       f"{problems} problem(s), listed above; everything else was imported: fix them and run again")


def register(edge: click.Group, hub: click.Group) -> None:
    """Add the USB commands to the CLI's ``edge`` and ``hub`` groups."""
    edge.add_command(edge_export_usb)
    edge.add_command(edge_import_usb)
    hub.add_command(hub_import_usb_cmd)
