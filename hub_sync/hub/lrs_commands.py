"""``school-edge hub config`` (the hub's settings) and ``school-edge hub lrs`` (the xAPI
relay to the county's LRS), added to the CLI's ``hub`` group by ``register``."""

from __future__ import annotations

from pathlib import Path

import click

from hub_sync.hub.command_options import HUB_DATA, open_hub as _open
from hub_sync.hub.command_options import when

@click.group("config")
def hub_config() -> None:
    """县级平台设置。 The hub's settings (docs/xapi.md)."""


@hub_config.command("show")
@HUB_DATA
def hub_config_show(data_dir: Path) -> None:
    """列出平台设置。 List the hub's settings and their values."""
    from hub_sync.hub.hub_settings import HUB_SETTINGS, HubSettings

    values = HubSettings(_open(data_dir).db).all()
    for key, setting in HUB_SETTINGS.items():
        click.echo(f"{key:22} {str(values[key]) or '-':40} {setting.help}")


@hub_config.command("set")
@HUB_DATA
@click.argument("key")
@click.argument("value")
def hub_config_set(data_dir: Path, key: str, value: str) -> None:
    """修改一项平台设置（先检查，错误则不改）。 Change one setting (checked first; a wrong value changes nothing)."""
    from hub_sync.hub.hub_settings import HubSettings

    stored = HubSettings(_open(data_dir).db).set(key, value)
    click.echo(f"已设置 Set {key} = {stored if stored != '' else '-'}")


@click.group("lrs")
def hub_lrs() -> None:
    """把使用记录以 xAPI 语句转发到学习记录库 (LRS)。 Relay usage to the county's LRS as xAPI statements."""


@hub_lrs.command("credentials")
@HUB_DATA
@click.option("--user", "username", required=True, help="LRS 用户名 LRS username")
@click.option("--password", prompt="LRS 密码 password", hide_input=True, help="LRS 密码（不给则提示输入） LRS password (prompted if not given)")
def hub_lrs_credentials(data_dir: Path, username: str, password: str) -> None:
    """写入 LRS 凭据文件（0600）。 Write the LRS credentials file (mode 0600)."""
    from hub_sync.hub.lrs_client import write_credentials

    _open(data_dir).close()  # a hub folder, not any folder
    path = write_credentials(data_dir, username, password)
    click.echo(f"已写入 Wrote {path} (0600)")


@hub_lrs.command("push")
@HUB_DATA
def hub_lrs_push(data_dir: Path) -> None:
    """现在转发一遍未发送的使用记录。 Send what is pending to the LRS now (one pass, with progress)."""
    from hub_sync.hub.lrs_relay import LrsRelay

    relay = LrsRelay(_open(data_dir))
    click.echo(f"待发送 Pending: {relay.pending()} -> {relay.status().url or '-'}")
    sent = relay.push(progress=lambda done, total: click.echo(f"  已被 LRS 接收 accepted {done}/{total}"))
    click.echo(f"完成 Done: LRS 接收了 {sent} 条语句 the LRS accepted {sent} statement(s)")


@hub_lrs.command("status")
@HUB_DATA
def hub_lrs_status(data_dir: Path) -> None:
    """转发状态：地址、待发送、最近一次结果。 The relay's state: LRS, pending, last pass and error."""
    from hub_sync.hub.lrs_client import credentials_path
    from hub_sync.hub.lrs_relay import LrsRelay

    st = LrsRelay(_open(data_dir)).status()
    click.echo(f"LRS:                  {st.url or '未设置 not set'}")
    click.echo(f"凭据 credentials:     {credentials_path(data_dir) if credentials_path(data_dir).exists() else '无 none'}")
    click.echo(f"待发送 pending:       {st.pending}")
    click.echo(f"已接收 accepted:      {st.sent_total}")
    click.echo(f"上次转发 last pass:   {when(st.last_pass_at, seconds=True)}")
    click.echo(f"上次成功 last ok:     {when(st.last_ok_at, seconds=True)}")
    if st.last_error:
        click.echo(f"上次错误 last error:  {when(st.last_error_at, seconds=True)} {st.last_error}")


def register(group: click.Group) -> None:
    """Add ``config`` and ``lrs`` to the CLI's ``hub`` group."""
    group.add_command(hub_config)
    group.add_command(hub_lrs)
