"""``school-edge hub mirror ...``: province channels mirrored into this county hub
(``hub_sync.hub.mirror_sync``)."""

from __future__ import annotations

from pathlib import Path

import click

from hub_sync.hub.command_options import HUB_DATA, open_hub as _open, when as _when


@click.group("mirror")
def mirror() -> None:
    """镜像省级频道（省级签名，县级转发）。 Mirror province channels (signed by the province, served by the county)."""


@mirror.command("add")
@HUB_DATA
@click.option("--from", "url", required=True, help="省级平台地址 Province hub URL, e.g. http://province.example:8090")
@click.option("--channel", required=True, help="省级频道编号 Province channel id, e.g. prov-yuwen")
@click.option("--province-root", "root_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="省级平台的 root.json（随技术员的U盘或由教育局提供） The province's root.json, given out of band")
@click.option("--title", default="", help="频道名称 Title shown to schools")
@click.option("--mandatory/--optional", default=False, show_default=True,
              help="所有学校必选，或学校自选 Mandatory for every school, or optional")
@click.option("--no-sync", is_flag=True, help="先不同步 Do not sync now")
def mirror_add(data_dir: Path, url: str, channel: str, root_file: Path, title: str, mandatory: bool, no_sync: bool) -> None:
    """添加省级频道镜像并同步一次。 Add a mirrored province channel and sync it once."""
    from hub_sync.hub.mirror_sync import add_mirror, sync_mirror
    from hub_sync.hub.publisher import publish

    hub = _open(data_dir)
    add_mirror(hub, channel, url, root_file.read_bytes(), title, mandatory)
    click.echo(f"已添加镜像 Mirror added: {channel} <- {url.rstrip('/')}")
    if not no_sync:
        result = sync_mirror(hub, channel)
        state = publish(hub)
        click.echo(f"已同步 Synced {channel} v{result.version}: {result.files} 个文件 files "
                   f"({result.fetched} 个新下载 downloaded); 已发布 published snapshot {state.snapshot_version}")


@mirror.command("list")
@HUB_DATA
def mirror_list(data_dir: Path) -> None:
    """列出镜像的省级频道。 List mirrored province channels."""
    from hub_sync.hub.channel_mirrors import ChannelMirrors

    mirrors = ChannelMirrors(_open(data_dir).db).all()
    if not mirrors:
        click.echo("没有镜像的频道 No mirrored channel")
    for m in mirrors:
        state = f"失败 failed: {m.error}" if m.error else "正常 ok"
        click.echo(f"{m.channel:24} v{m.version or 0:<4} {_when(m.synced_at, '从未 never'):17} {m.url}  {state}")


@mirror.command("remove")
@HUB_DATA
@click.argument("channel")
def mirror_remove(data_dir: Path, channel: str) -> None:
    """停止镜像并从县级仓库撤下该频道。 Stop mirroring a channel and withdraw it from the county's repository."""
    from hub_sync.hub.mirror_sync import remove_mirror
    from hub_sync.hub.publisher import publish

    hub = _open(data_dir)
    remove_mirror(hub, channel)
    state = publish(hub)
    click.echo(f"已移除镜像 Mirror removed: {channel}; 已发布 published snapshot {state.snapshot_version}")


@mirror.command("sync")
@HUB_DATA
def mirror_sync(data_dir: Path) -> None:
    """校验并下载所有镜像频道，然后发布（hub serve 也定时执行）。
    Verify and fetch every mirrored channel, then publish (hub serve does this on a schedule too)."""
    from hub_sync.core.errors import SyncError
    from hub_sync.hub.mirror_sync import sync_all

    done, failed = sync_all(_open(data_dir))
    for r in done:
        click.echo(f"已同步 Synced {r.channel} v{r.version}: {r.files} 个文件 files ({r.fetched} 个新下载 downloaded)")
    if failed:
        if len(failed) == 1:
            raise failed[0][1]
        raise SyncError("；".join(exc.zh for _, exc in failed), "; ".join(exc.en for _, exc in failed))
