"""``school-edge provision make|apply``: the minimal provisioning path."""

from __future__ import annotations

import time
from pathlib import Path

import click

from provisioning.usb_cli import apply_stick_cli, is_stick, make_stick_cli, usb_apply_options, usb_make_options


@click.group("provision")
def provision() -> None:
    """设备配置 Provisioning: bundles from the hub, applied on the appliance."""


@provision.command("make")
@click.option("--hub-data", type=click.Path(path_type=Path), required=True, help="平台数据目录 Hub data folder")
@click.option("--school-code", required=True, help="学校识别码（10 位） School code (10 digits)")
@click.option("--school-name", required=True, help="学校名称 School name")
@click.option("--hub-url", required=True, help="平台地址 Hub URL, e.g. http://10.1.2.3:8090")
@click.option("--rsync-url", default=None, help="rsync 地址 rsync URL (default: hub host, port+1, module content)")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="输出目录 Output folder")
@click.option("--token-days", type=click.IntRange(min=1), default=None,
              help="登记令牌的有效天数：一个令牌只能登记一台设备（默认 30；U盘默认同 --valid-days） "
                   "Days the bundle's one-time enrollment token stays valid (default 30; with --stick: --valid-days)")
@usb_make_options
def provision_make(hub_data: Path, school_code: str, school_name: str, hub_url: str, rsync_url: str | None,
                   out_dir: Path, token_days: int | None, stick: bool = False, **usb) -> None:
    """制作由根密钥签名的配置包（含一次性登记令牌）。 Write a provisioning bundle signed by the hub's root key, with a one-time enrollment token."""
    from urllib.parse import urlparse

    from hub_sync.formats.enrollment import TOKEN_LIFETIME_DAYS
    from hub_sync.hub import Hub

    from provisioning.bundle import make_bundle, read_bundle

    if rsync_url is None:
        u = urlparse(hub_url)
        rsync_url = f"rsync://{u.hostname}:{(u.port or 80) + 1}/content"
    if stick:  # --out is a USB stick: the full stick (provisioning.usb_cli)
        return make_stick_cli(hub_data, school_code, school_name, hub_url, rsync_url, out_dir, token_days=token_days, **usb)
    hub = Hub.open(hub_data)
    path = make_bundle(hub, school_code, school_name, hub_url, rsync_url, out_dir,
                       TOKEN_LIFETIME_DAYS if token_days is None else token_days)
    hub.close()
    expires = time.strftime("%Y-%m-%d %H:%M", time.localtime(read_bundle(out_dir).token_expires_at))
    click.echo(f"配置包已写入 Bundle written: {path}")
    click.echo(f"  登记令牌只能登记一台设备，{expires} 前有效 The enrollment token enrolls one device, until {expires}")


@provision.command("apply")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("school-edge-data"), show_default=True,
              help="数据目录 Data folder of the appliance")
@click.option("--no-enroll", is_flag=True, help="不联系平台 Do not contact the hub now")
@usb_apply_options
def provision_apply(bundle_dir: Path, data_dir: Path, no_enroll: bool, **usb) -> None:
    """在设备上应用配置包：生成设备密钥和登记请求。 Apply a bundle: device key, pinned root, enrollment request."""
    if is_stick(bundle_dir):  # a USB stick (school-edge/ layout): plan, then one transaction (provisioning.usb_cli)
        return apply_stick_cli(bundle_dir, data_dir, **usb)
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig
    from edge_agent.sync.content_sync import enroll_now
    from hub_sync.core.errors import DeviceError, Problem

    from provisioning.apply import apply_bundle

    appliance = Appliance.open(EdgeConfig.load(data_dir))
    try:
        bundle, request = apply_bundle(appliance, bundle_dir)
        click.echo(f"已配置 Provisioned {appliance.device_id} for {bundle.school_code} {bundle.school_name}")
        click.echo(f"登记请求 Enrollment request: {request}")
        if not no_enroll:
            try:
                enroll_now(appliance)
                click.echo(f"已在平台登记 Enrolled at {bundle.hub_url}")
            except DeviceError:
                raise  # refused for good (a spent or expired token): one clear line, exit 1
            except Problem as exc:
                click.echo(f"暂时无法登记，首次同步时会再试 Not enrolled yet, the first sync retries: {exc}")
    finally:
        appliance.close()
