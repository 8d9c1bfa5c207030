"""``school-edge hub relay`` (a county relaying to its province) and ``school-edge hub county``
(a province registering its counties), added to the CLI's ``hub`` group by ``register``
(docs/province.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hub_sync.hub.command_options import HUB_DATA, opened_hub as _opened, when as _when

@click.group("relay")
def hub_relay() -> None:
    """向省级平台转发使用数据。 Relay the schools' usage up to the province (docs/province.md)."""


@hub_relay.command("keygen")
@HUB_DATA
def hub_relay_keygen(data_dir: Path) -> None:
    """生成本平台的中继密钥（县：签名设备名单和转发包；省：签名回执）。 Make this hub's relay key."""
    from hub_sync.hub.relay_keys import generate_relay_key, relay_key_path

    with _opened(data_dir):
        generate_relay_key(data_dir)
    click.echo(f"已生成中继密钥 Relay key made: {relay_key_path(data_dir)}")
    click.echo("公钥（交给对方登记） Public key, for the other side: school-edge hub relay key --data ...")


@hub_relay.command("key")
@HUB_DATA
def hub_relay_key(data_dir: Path) -> None:
    """打印本平台的中继公钥（JSON）。 Print this hub's relay public key (JSON, for 'hub county add --key')."""
    from hub_sync.hub.relay_keys import relay_public_key

    click.echo(json.dumps(relay_public_key(data_dir), sort_keys=True))


@hub_relay.command("trust")
@HUB_DATA
@click.option("--key", "key_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="省级平台的中继公钥文件 The province's relay public key (its 'hub relay key')")
def hub_relay_trust(data_dir: Path, key_file: Path) -> None:
    """信任省级平台的中继公钥（回执须由它签名）。 Trust the province's relay key (receipts must verify against it)."""
    from hub_sync.hub.relay_keys import read_public_key, trust_province

    with _opened(data_dir):
        key = read_public_key(key_file)
        trust_province(data_dir, key)
    click.echo(f"已信任省级平台密钥 Province relay key trusted: {key['keyid'][:16]}")


@hub_relay.command("push")
@HUB_DATA
def hub_relay_push(data_dir: Path) -> None:
    """现在向省级平台转发一遍。 One relay pass to the province now: roster, then every waiting bundle."""
    from hub_sync.hub.relay_push import RelayPush

    with _opened(data_dir) as hub:
        result = RelayPush(hub).push(progress=lambda r: click.echo(f"  转发包 bundles {r.bundles}: 省级接收 accepted"
                                                                    f" {r.accepted}, 拒收 refused {len(r.refused)}"))
    roster = result.roster
    click.echo(f"设备名单 Roster: 新增 added {roster.get('added', 0)}, 吊销 revoked {roster.get('revoked', 0)}")
    for line in roster.get("refused", []):
        click.echo(f"  名单拒收 roster refused: {line}")
    for line in result.refused:
        click.echo(f"  拒收 refused: {line}")
    click.echo(f"完成 Done: {result.bundles} 个转发包 bundle(s), {result.accepted} 个数据包被接收 batch(es) accepted")


@hub_relay.command("status")
@HUB_DATA
def hub_relay_status(data_dir: Path) -> None:
    """转发状态：省级地址、待转发、已确认、拒收。 The relay's state: province, waiting, acknowledged, refusals."""
    from hub_sync.hub.hub_settings import HubSettings
    from hub_sync.hub.relay_outbox import RelayOutbox

    with _opened(data_dir) as hub:
        settings = HubSettings(hub.db)
        province, code = settings.get("province_url"), settings.get("county_code")
        st = RelayOutbox(hub.db).status()
    click.echo(f"省级平台 province:    {province or '未设置 not set'}")
    click.echo(f"本县代码 county code: {code or '未设置 not set'}")
    click.echo(f"待转发 waiting:       {st.waiting_batches} 个数据包 batch(es)")
    click.echo(f"转发包 bundles:       {st.bundles_acked}/{st.bundles_sent} 已确认 acknowledged"
               + (f"，{st.unacked_relay_seq} 待重发 to send again" if st.unacked_relay_seq else ""))
    click.echo(f"省级接收 accepted:    {st.accepted_total} 个数据包 batch(es)")
    click.echo(f"上次确认 last ack:    {_when(st.last_acked_at)}")
    for line in st.refusals:
        click.echo(f"拒收 refused:         {line}")


@click.group("county")
def hub_county() -> None:
    """省级平台：登记向本平台转发的县。 At a province: the counties that relay here (docs/province.md)."""


@hub_county.command("add")
@HUB_DATA
@click.option("--id", "code", required=True, help="县代码 County code (the county's 'config set county_code')")
@click.option("--name", required=True, help="县名 County name")
@click.option("--key", "key_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="县的中继公钥文件 The county's relay public key (its 'hub relay key')")
def hub_county_add(data_dir: Path, code: str, name: str, key_file: Path) -> None:
    """登记一个县及其中继公钥。 Register a county and its relay public key."""
    from hub_sync.hub.counties import Counties
    from hub_sync.hub.relay_keys import read_public_key

    with _opened(data_dir) as hub:
        county = Counties(hub.db).add(code, name, read_public_key(key_file))
    click.echo(f"已登记县 County registered: {county.code} {county.name} (key {county.public_key.keyid[:16]})")


@hub_county.command("list")
@HUB_DATA
def hub_county_list(data_dir: Path) -> None:
    """列出各县：设备、学校、转发进度。 List the counties: devices, schools, relay progress."""
    from hub_sync.hub.counties import Counties

    with _opened(data_dir) as hub:
        rows = Counties(hub.db).all()
    if not rows:
        click.echo("还没有登记任何县 No county registered yet")
    for r in rows:
        click.echo(f"{r['county']:12} {r['name']:16} {r['status']:8} 设备 devices {r['devices']:4} 学校 schools "
                   f"{r['schools']:4} 转发包 bundles {r['relay_cursor']:6} 上次 last {_when(r['last_relay_at'])}")


@hub_county.command("revoke")
@HUB_DATA
@click.option("--id", "code", required=True, help="县代码 County code")
def hub_county_revoke(data_dir: Path, code: str) -> None:
    """吊销一个县：其后的转发整包拒收（已收到的保留）。 Revoke a county: what it sends from now on is refused whole."""
    from hub_sync.hub.counties import Counties

    with _opened(data_dir) as hub:
        Counties(hub.db).revoke(code)
    click.echo(f"已吊销县 County revoked: {code}")


def register(group: click.Group) -> None:
    """Add ``relay`` and ``county`` to the CLI's ``hub`` group."""
    group.add_command(hub_relay)
    group.add_command(hub_county)
