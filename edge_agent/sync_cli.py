"""``school-edge edge sync|update|channels|subscribe|unsubscribe`` (added to the ``edge`` group)."""

from __future__ import annotations

from pathlib import Path

import click

EDGE_DATA = click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("school-edge-data"),
                         show_default=True, help="数据目录 Data folder of the appliance")


def _open(data_dir: Path):
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig

    return Appliance.open(EdgeConfig.load(data_dir))


@click.command("sync")
@EDGE_DATA
@click.option("--force", is_flag=True, help="忽略同步时段，立即下载 Download now, even outside the sync window")
def edge_sync(data_dir: Path, force: bool) -> None:
    """从县级平台同步资源。 Sync resources from the county hub."""
    from edge_agent.sync.content_sync import sync_content
    from edge_agent.sync.scheduler import in_window

    appliance = _open(data_dir)
    try:
        allow = force or in_window(appliance.config.sync_window)
        result = sync_content(appliance, allow_download=allow, progress=lambda line: click.echo(f"  {line}"))
        if result.waiting_for_window:
            click.echo(f"资源目录版本 Catalogue version {result.catalogue_version}; 等待同步时段 waiting for the sync window "
                       f"{appliance.config.sync_window} ({result.missing_bytes} bytes); 用 --force 立即下载 use --force to download now")
        else:
            click.echo(f"同步完成 Synced: catalogue version {result.catalogue_version}, "
                       f"{result.fetched.files} files fetched ({result.fetched.bytes_received} bytes, {result.fetched.transport or '-'})")
    finally:
        appliance.close()


@click.command("update")
@EDGE_DATA
@click.option("--force", is_flag=True, help="忽略同步时段，立即下载 Download now, even outside the sync window")
@click.option("--no-install", is_flag=True, help="只下载并校验，不安装 Fetch and verify only, do not install")
@click.option("--retry", is_flag=True, help="再试一次曾经回退的版本 Try again a version that rolled back here before")
def edge_update(data_dir: Path, force: bool, no_install: bool, retry: bool) -> None:
    """从县级平台获取给本机的软件版本并安装。 Fetch the software release meant for this appliance and install it."""
    from edge_agent.sync.firmware_sync import update_firmware
    from edge_agent.sync.scheduler import in_window

    appliance = _open(data_dir)
    try:
        result = update_firmware(appliance, allow_download=force or in_window(appliance.config.sync_window),
                                 install=not no_install, progress=lambda line: click.echo(f"  {line}"), retry=retry)
    finally:
        appliance.close()
    texts = {"none": "没有给本机的软件更新 No release for this appliance",
             "current": f"已是县里发布的版本 Already at the county's version {result.version}",
             "not_newer": f"县里的版本 {result.version} 不比本机新 The county's version {result.version} is not newer",
             "failed_before": f"软件 {result.version} 曾在本机回退，不再自动重试 rolled back here before; "
                              "not tried again (--retry to try)",
             "waiting_for_window": f"软件 {result.version} 等待同步时段 waiting for the sync window; 用 --force 立即下载 use --force",
             "staged": f"软件 {result.version} 已下载并校验 fetched and verified: {result.release_dir}",
             "installed": f"软件 {result.version} 已安装 installed",
             "install_started": f"软件 {result.version} 已开始安装 install started in its own process",
             "rolled_back": f"软件 {result.version} 未通过检查，已回退 failed its checks and was rolled back: "
                            f"{getattr(result.install, 'reason', '')}"}
    click.echo(texts[result.action] + (f" ({result.bytes_received} / {result.release_size} bytes moved)"
                                       if result.release_dir else ""))
    if result.action == "rolled_back":
        raise SystemExit(1)


@click.command("channels")
@EDGE_DATA
def edge_channels(data_dir: Path) -> None:
    """列出平台的频道和本校的选择。 List the hub's channels and this school's choice."""
    from edge_agent.sync.channel_choice import hub_channels

    appliance = _open(data_dir)
    try:
        for ch in hub_channels(appliance):
            mark = "*" if ch["subscribed"] else " "
            kind = "必选 mandatory" if ch["mandatory"] else "自选 optional"
            click.echo(f"{mark} {ch['id']:24} v{ch['version']:<4} {kind:16} {ch['title']}")
        click.echo("* = 本校已有 in this school's catalogue")
    finally:
        appliance.close()


def _subscription(data_dir: Path, channel: str, on: bool) -> None:
    from edge_agent.sync.channel_choice import set_subscription

    appliance = _open(data_dir)
    try:
        channels = set_subscription(appliance, channel, on)
        click.echo(f"本校频道 School channels: {', '.join(channels)}; "
                   f"运行 run 'school-edge edge sync' 以获取 to fetch them")
    finally:
        appliance.close()


@click.command("subscribe")
@EDGE_DATA
@click.argument("channel")
def edge_subscribe(data_dir: Path, channel: str) -> None:
    """订阅自选频道。 Subscribe to an optional channel."""
    _subscription(data_dir, channel, True)


@click.command("unsubscribe")
@EDGE_DATA
@click.argument("channel")
def edge_unsubscribe(data_dir: Path, channel: str) -> None:
    """退订自选频道。 Leave an optional channel."""
    _subscription(data_dir, channel, False)


def register(group: click.Group) -> None:
    for cmd in (edge_sync, edge_update, edge_channels, edge_subscribe, edge_unsubscribe):
        group.add_command(cmd)
