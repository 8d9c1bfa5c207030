"""``school-edge firmware ...``: build, inspect, install and roll back software
releases, and ``run``, the supervisor the systemd unit starts (see docs/updates.md).

Thin commands over the ``firmware`` package, which knows nothing of the
appliance: this module supplies what only the appliance knows (its migration
names, its LAN address, a sample catalogue file for the health check, its school
and the firmware key its trusted TUF metadata names).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import click

DATA_HELP = "数据目录 Data folder of the appliance"


def _data_option(f):
    return click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("school-edge-data"),
                        show_default=True, help=DATA_HELP)(f)


def _open(data_dir: Path, **overrides):
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig

    return Appliance.open(EdgeConfig.load(data_dir, overrides))


def migration_names() -> list[str]:
    """Every migration of the appliance database, as ``<set>/<step>`` (what a release carries)."""
    from edge_agent.appliance import MIGRATIONS

    return [f"{m.name}/{step}" for m in MIGRATIONS for step in m.names()]


def health_sample(appliance):
    """A small public catalogue file the new version must serve with its hash, or None."""
    from firmware.health import Sample

    row = appliance.db.execute("select resource_id, path, sha256 from resource_files where answer_key = 0 "
                               "order by size, resource_id limit 1").fetchone()
    return Sample(f"/r/{quote(row[0])}/{quote(row[1])}", row[2]) if row else None


def firmware_keys(appliance) -> list:
    """The ``firmware`` role's keys in the appliance's trusted TUF metadata."""
    from hub_sync.client.firmware_client import trusted_firmware_keys

    from edge_agent.sync.content_sync import sync_dir

    return trusted_firmware_keys(sync_dir(appliance) / "tuf")


@click.group("firmware")
def firmware() -> None:
    """设备软件：构建、安装、回退。 The appliance's software: build, install, roll back."""


@firmware.command("build")
@click.option("--version", "version", required=True, help="版本号 Version of the release, e.g. 0.2.0")
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="输出目录（须为空） Output folder (new or empty)")
@click.option("--min-from", default=None, help="可从哪个最旧版本升级 Oldest version it upgrades from (default 0.1.0)")
@click.option("--source", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="源码目录 Source checkout (default: this one)")
@click.option("--cache", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="依赖 wheel 缓存 Wheel cache (default ~/.cache/school-edge/wheels)")
def build_cmd(version: str, out: Path, min_from: str | None, source: Path | None, cache: Path | None) -> None:
    """构建软件发布。 Build a release: the app and every dependency as wheels, and a manifest."""
    from firmware.build import DEFAULT_MIN_FROM, build_release

    manifest = build_release(version, out, source=source, cache=cache, migrations=migration_names(),
                             min_from=min_from or DEFAULT_MIN_FROM)
    click.echo(f"已构建 Built {manifest.version}: {len(manifest.files)} 个文件 files, "
               f"{manifest.total_size / 2**20:.1f} MB -> {out}")


@firmware.command("status")
@_data_option
@click.option("--json", "as_json", is_flag=True, help="输出 JSON Print JSON")
def status_cmd(data_dir: Path, as_json: bool) -> None:
    """显示软件版本、槽位和上次更新结果。 Show the version, slots and the last update's result."""
    from firmware.slots import SLOT_NAMES, current_slot, slot_meta
    from firmware.state import firmware_root, summary

    root = firmware_root(data_dir)
    report = summary(data_dir)
    report["slots"] = {name: (slot_meta(root, name) or {}).get("version") for name in SLOT_NAMES}
    report["current"] = current_slot(root) or "factory"
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    for key, value in report.items():
        click.echo(f"{key:16} {value}")


@firmware.command("install")
@_data_option
@click.argument("release", type=click.Path(path_type=Path, file_okay=False))
def install_cmd(data_dir: Path, release: Path) -> None:
    """安装签名的软件发布（U 盘或文件夹）。 Install a signed release folder (from a stick or a folder)."""
    from firmware.installer import install
    from firmware.state import firmware_root

    appliance = _open(data_dir)
    try:
        keys, school, sample = firmware_keys(appliance), appliance.school_code, health_sample(appliance)
    finally:
        appliance.close()
    result = install(firmware_root(data_dir), release, data_dir, keys, school_code=school, sample=sample)
    if result.result == "committed":
        click.echo(f"已更新 Updated {result.previous} -> {result.version} "
                   f"({result.installed} 个包安装 installed, {result.reused} 个复用 reused, {result.seconds:.1f} s)")
    elif result.result == "started":
        click.echo(f"安装已在后台开始 Install of {result.version} started in the background")
    else:
        click.echo(f"错误 Error: 新版本 {result.version} 未通过检查，已回退到 {result.previous} "
                   f"(rolled back to {result.previous}: {result.reason})", err=True)
        raise SystemExit(1)


@firmware.command("rollback")
@_data_option
def rollback_cmd(data_dir: Path) -> None:
    """撤销未提交的更新（恢复数据库）。 Undo an update that has not committed (restoring the database)."""
    from firmware.installer import roll_back
    from firmware.state import firmware_root, summary

    roll_back(firmware_root(data_dir), data_dir)
    click.echo(f"已回退 Rolled back: {summary(data_dir)['version']}")


@firmware.command("run")
@_data_option
def run_cmd(data_dir: Path) -> None:
    """运行并守护当前版本（systemd 启动它）。 Serve the current version and keep it serving (systemd runs this)."""
    from firmware.state import firmware_root
    from firmware.supervisor import Supervisor

    from edge_agent.config import EdgeConfig
    from edge_agent.front import FrontPaths

    cfg = EdgeConfig.load(data_dir)
    # a SIGKILLed service's nginx (its own session) is known by this data folder's configuration path
    Supervisor(firmware_root(data_dir), data_dir, cfg.host, cfg.port,
               strays=[str(FrontPaths.of(Path(data_dir)).conf)]).run()


@firmware.command("trial", hidden=True)
@_data_option
@click.option("--port", type=int, required=True)
@click.option("--parent", type=int, required=True)
def trial_cmd(data_dir: Path, port: int, parent: int) -> None:
    """A new version on trial: migrate, serve on 127.0.0.1 only, no background jobs (the installer runs this)."""
    from firmware.service import die_with_parent

    from edge_agent.runner import run_appliance

    die_with_parent(parent)
    appliance = _open(data_dir, host="127.0.0.1", port=port, front="none", advertise=False)
    run_appliance(appliance, banner=False)


def register(main: click.Group) -> None:
    """Add the ``firmware`` group to ``school-edge``."""
    main.add_command(firmware)
