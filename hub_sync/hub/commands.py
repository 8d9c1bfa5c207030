"""``school-edge hub`` commands for channels, resources, publishing, serving and
enrollment (added to the CLI's ``hub`` group by ``register``)."""

from __future__ import annotations

from pathlib import Path

import click

from hub_sync.hub.command_options import HUB_DATA, open_hub as _open, when as _when

@click.command("init")
@HUB_DATA
@click.option("--db", "db_url", default=None, metavar="URL",
              help="PostgreSQL 数据库地址（默认 SQLite：H/hub.db） PostgreSQL URL, postgresql://user@host:port/dbname (default: SQLite in H/hub.db)")
def hub_init(data_dir: Path, db_url: str | None) -> None:
    """新建县级平台（密钥、数据库、资源库）。 Create a hub: keys, database, store."""
    from hub_sync.hub.database import check_url
    from hub_sync.hub.hub import Hub
    from hub_sync.hub.postgres_admin import drop_created_database, ensure_database

    created = False
    if db_url and not (data_dir / "keys" / "root.pem").exists():  # before anything is written into the folder
        check_url(db_url)
        created = ensure_database(db_url)
    try:
        hub = Hub.init(data_dir, db_url=db_url)
    except BaseException:
        if created:  # the init failed after the database was made for it: leave no half-made hub behind
            drop_created_database(db_url)
        raise
    where = hub.db.describe()
    hub.close()
    if created:
        click.echo(f"已创建数据库 Created database {where}")
    click.echo(f"县级平台已创建 Hub created in {data_dir} ({'PostgreSQL ' + where if db_url else 'SQLite'})")


@click.command("status")
@HUB_DATA
def hub_status(data_dir: Path) -> None:
    """显示县级平台状态。 Show the hub's state."""
    from hub_sync.formats.firmware_rollout import describe
    from hub_sync.hub.firmware_repo import device_lines, rules

    hub = _open(data_dir)
    try:
        click.echo(f"{'database':20} {hub.db.dialect} {hub.db.describe()}")
        for key, value in hub.status().items():
            click.echo(f"{key:20} {value}")
        click.echo(f"{'firmware':20} " + " | ".join(describe(rules(hub))))
        for line in device_lines(hub.db):
            click.echo(f"  {line}")
    finally:
        hub.close()


@click.command("backup")
@HUB_DATA
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="备份文件 Backup file to write")
def hub_backup(data_dir: Path, out: Path) -> None:
    """备份平台数据库（hub serve 运行时也可以）。 Back up the hub database (also while hub serve runs)."""
    from hub_sync.hub.backup import backup

    _open(data_dir).close()  # a hub folder, schema current
    with click.progressbar(length=1, label="备份 backing up", show_pos=True) as bar:
        header = backup(data_dir, out, _progress(bar))
    click.echo(f"已备份 Backed up ({header['engine']}, revision {header['revision']}) to {out}")


@click.command("restore")
@HUB_DATA
@click.option("--from", "source", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="备份文件 Backup file to restore")
@click.option("--yes", is_flag=True, help="不再确认 Do not ask for confirmation")
def hub_restore(data_dir: Path, source: Path, yes: bool) -> None:
    """用备份替换平台数据库（先停止 hub serve）。 Replace the hub database with a backup (stop hub serve first)."""
    from hub_sync.hub.backup import check_restorable, restore

    header = check_restorable(data_dir, source)
    made = _when(header.get("created_at"))
    if not yes:
        click.confirm(f"用 {made} 的备份替换当前数据？ Replace the hub's current data with the backup of {made}?", abort=True)
    with click.progressbar(length=1, label="恢复 restoring", show_pos=True) as bar:
        restore(data_dir, source, _progress(bar))
    _open(data_dir).close()  # brings an older backup's schema up to date
    click.echo(f"已恢复 Restored the backup of {made} ({header['engine']}, revision {header['revision']})")


def _progress(bar):
    """A backup/restore progress callback (done, total) driving a click progress bar."""
    def update(done: int, total: int) -> None:
        bar.length = max(total, 1)
        bar.update(done - bar.pos)
    return update


@click.command("channel")
@HUB_DATA
@click.argument("channel_id")
@click.option("--title", default="", help="频道名称 Title, e.g. 一年级语文 统编版")
@click.option("--mandatory/--optional", default=None, help="必选或自选 Mandatory for every school, or optional")
def hub_channel(data_dir: Path, channel_id: str, title: str, mandatory: bool | None) -> None:
    """新建或修改频道。 Create or change a channel."""
    from hub_sync.hub.channel_mirrors import ChannelMirrors
    from hub_sync.hub.channels import Channels

    hub = _open(data_dir)
    ChannelMirrors(hub.db).refuse_own(channel_id)  # a mirrored channel's id is the province's
    ch = Channels(hub.db).put_channel(channel_id, title, mandatory)
    click.echo(f"频道 Channel {ch.id}: {ch.title} ({'必选 mandatory' if ch.mandatory else '自选 optional'})")


@click.command("channels")
@HUB_DATA
def hub_channels(data_dir: Path) -> None:
    """列出频道。 List channels."""
    from hub_sync.hub.channels import Channels
    from hub_sync.hub.publisher import repo_for

    hub = _open(data_dir)
    state = repo_for(hub).state()
    versions = {**state.channel_versions, **state.mirrored_versions}  # a mirrored channel: the province's version
    for ch in Channels(hub.db).all():
        click.echo(f"{ch.id:24} v{versions.get(ch.id, 0):<4} {'必选 mandatory' if ch.mandatory else '自选 optional':16} {ch.title}")


@click.command("add-resource")
@HUB_DATA
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--channel", required=True, help="频道 Channel id")
@click.option("--id", "resource_id", required=True, help="资源编号 Resource id")
@click.option("--title", required=True, help="标题 Title")
@click.option("--kind", required=True, help="类型 video/audio/document/html/image/exercise")
@click.option("--stage", default="", help="学段 e.g. 小学")
@click.option("--grade", default="", help="年级 e.g. 一年级")
@click.option("--subject", default="", help="学科 e.g. 语文")
@click.option("--edition", default="", help="教材版本 e.g. 统编版")
@click.option("--chapter", default="", help="章节/单元")
@click.option("--description", default="", help="简介 Description")
@click.option("--source", default="county", show_default=True, help="来源 national/provincial/county")
def hub_add_resource(data_dir: Path, files: tuple[Path, ...], channel: str, resource_id: str, **meta) -> None:
    """把文件和课程信息加入频道（发布后生效）。 Add files with curriculum metadata to a channel (visible after publish)."""
    from hub_sync.hub.channels import Channels
    from hub_sync.hub.publisher import add_files

    from hub_sync.hub.channel_mirrors import ChannelMirrors

    hub = _open(data_dir)
    chans = Channels(hub.db)
    chans.get(channel)
    ChannelMirrors(hub.db).refuse_own(channel)
    entries = add_files(hub, list(files))
    chans.put_resource(resource_id, channel, meta, entries)
    click.echo(f"已加入 Added {resource_id} to {channel} ({len(entries)} 个文件 files); "
               f"运行 run 'school-edge hub publish --data {data_dir} --channel {channel}'")


@click.command("remove-resource")
@HUB_DATA
@click.argument("resource_id")
def hub_remove_resource(data_dir: Path, resource_id: str) -> None:
    """从频道删除资源（发布后生效）。 Drop a resource (visible after publish)."""
    from hub_sync.hub.channels import Channels

    channel = Channels(_open(data_dir).db).remove_resource(resource_id)
    click.echo(f"已删除 Removed {resource_id} from {channel}")


@click.command("publish")
@HUB_DATA
@click.option("--channel", "channels", multiple=True, help="只发布这些频道 Publish only these channels (default: all that changed)")
def hub_publish(data_dir: Path, channels: tuple[str, ...]) -> None:
    """签名发布频道的新版本。 Sign and publish new channel versions."""
    from hub_sync.hub.channels import Channels
    from hub_sync.hub.publisher import publish

    hub = _open(data_dir)
    for ch in channels:
        Channels(hub.db).get(ch)
    state = publish(hub, set(channels) if channels else None)
    click.echo(f"已发布 Published snapshot {state.snapshot_version}: "
               + ", ".join(f"{c} v{v}" for c, v in sorted(state.channel_versions.items())))


@click.command("serve")
@HUB_DATA
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址 Address")
@click.option("--port", type=int, default=8090, show_default=True, help="HTTP 端口 HTTP port")
@click.option("--rsync-port", type=int, default=None, help="rsync 端口 rsync daemon port (default: port+1; 0 = none)")
@click.option("--front/--no-front", default=True, show_default=True,
              help="nginx 前端（--no-front 仅供开发） nginx in front (--no-front: gunicorn alone, for development)")
def hub_serve(data_dir: Path, host: str, port: int, rsync_port: int | None, front: bool) -> None:
    """运行县级平台：nginx 前端、HTTP 接口、rsync 内容服务和定时任务（转发 xAPI、同步省级频道镜像）。
    Serve the hub: nginx front, HTTP API, rsync content and background jobs (the xAPI relay, mirrored channels)."""
    from hub_sync.hub.lrs_relay import relay_job
    from hub_sync.hub.relay_push import relay_job as province_relay_job
    from hub_sync.hub.mirror_sync import mirror_job
    from hub_sync.hub.server import HubServer

    rsync_port = port + 1 if rsync_port is None else rsync_port
    server = HubServer(_open(data_dir), host, port, rsync_port or None, front=front, jobs=[relay_job, mirror_job, province_relay_job])

    def ready() -> None:
        click.echo(f"县级平台已启动 Hub serving: {server.url}/", nl=True)
        if server.rsync_url:
            click.echo(f"  rsync: {server.rsync_url}")
        click.echo("按 Ctrl-C 停止 Press Ctrl-C to stop")

    server.serve_forever(on_ready=ready)


@click.command("enroll")
@HUB_DATA
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def hub_enroll(data_dir: Path, request_file: Path) -> None:
    """从登记请求文件登记设备。 Register a device from its enrollment request file."""
    from hub_sync.hub.repo_api import enroll

    result = enroll(_open(data_dir), request_file.read_bytes())
    click.echo(f"已登记 Enrolled {result['device_id']} ({result['school_code']})")


@click.command("devices")
@HUB_DATA
def hub_devices(data_dir: Path) -> None:
    """列出已登记的设备及其状态。 List enrolled devices: id, school, enrolled at, last contact, state."""
    from hub_sync.hub.registry import Registry

    devices = Registry(_open(data_dir).db).all()
    if not devices:
        click.echo("还没有登记的设备 No device enrolled yet")
        return
    click.echo(f"{'设备 device':22} {'学校 school':12} {'登记 enrolled':17} {'最近联系 last contact':21} 状态 state")
    for d in devices:
        state = "在用 active" if d["status"] == "active" else f"已吊销 revoked {_when(d['revoked_at'])}"
        click.echo(f"{d['device_id']:22} {d['school_code']:12} {_when(d['enrolled_at']):17} "
                   f"{_when(d['last_seen_at'], '从未 never'):21} {state}")
    from hub_sync.hub.firmware_repo import device_lines

    lines = device_lines(_open(data_dir).db)
    if lines:
        click.echo(f"{'设备 device':22} {'学校 school':12} {'软件 version':10} {'上次更新 last update':12}")
        for line in lines:
            click.echo(line)


@click.command("revoke")
@HUB_DATA
@click.argument("device_id")
def hub_revoke(data_dir: Path, device_id: str) -> None:
    """吊销设备：拒收它的上传和消息请求，删除只为它排队的消息。 Revoke a device: its uploads and polls are refused, its queued messages dropped."""
    from hub_sync.hub.downlink import Downlink

    device, dropped = Downlink(_open(data_dir).db).revoke(device_id)
    click.echo(f"已吊销 Revoked {device.device_id} ({device.school_code}); "
               f"删除了 {dropped} 条只为它排队的消息 dropped {dropped} message(s) queued only for it")


@click.command("notice")
@HUB_DATA
@click.option("--school", "schools", multiple=True, help="学校代码（可重复） School code (repeatable)")
@click.option("--all", "to_all", is_flag=True, help="发给所有已登记的学校 To every school with an enrolled device")
@click.option("--subject", default="", help="标题 Subject")
@click.option("--body", required=True, help="内容 Text")
def hub_notice(data_dir: Path, schools: tuple[str, ...], to_all: bool, subject: str, body: str) -> None:
    """向学校下发系统通知（随下次同步送达）。 Queue a system notice for schools (arrives with their next sync)."""
    from hub_sync.core.errors import FormatError
    from hub_sync.hub.downlink import Downlink

    down = Downlink(_open(data_dir).db)
    if to_all == bool(schools):
        raise FormatError("请用 --school 指定学校，或用 --all 发给所有学校（二选一）", "give --school CODE or --all (one of them)")
    queued = down.notice(down.schools() if to_all else list(schools), subject, body)
    click.echo(f"已排队 Queued notice for {len(queued)} 所学校 schools: " + ", ".join(f"{s} #{n}" for s, n in queued.items()))


@click.command("roster-change")
@HUB_DATA
@click.option("--school", required=True, help="学校代码 School code")
@click.option("--file", "change_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="名单变更 JSON 文件（一个对象或列表） Roster change JSON (one object or a list)")
def hub_roster_change(data_dir: Path, school: str, change_file: Path) -> None:
    """检查并下发名单变更（有错则全部不发）。 Check and queue roster changes (nothing is queued if any is wrong)."""
    import json

    from hub_sync.core.errors import FormatError
    from hub_sync.hub.downlink import Downlink

    try:
        changes = json.loads(change_file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"无法读取名单变更文件 {change_file}，未发送任何内容", f"cannot read roster change file {change_file}: {exc}; nothing queued") from exc
    seqs = Downlink(_open(data_dir).db).roster_changes(school, changes if isinstance(changes, list) else [changes])
    click.echo(f"已排队 Queued {len(seqs)} 条名单变更 roster change(s) for {school}: " + ", ".join(f"#{n}" for n in seqs))


@click.command("transfer")
@HUB_DATA
@click.option("--student", required=True, help="学籍号 Student number (G + 18)")
@click.option("--from", "from_school", required=True, help="转出学校代码 Old school code")
@click.option("--to", "to_school", required=True, help="转入学校代码 New school code")
@click.option("--class", "to_class", default="", help="新学校的班级（默认沿用原班级名） Class at the new school (default: the old class name)")
def hub_transfer(data_dir: Path, student: str, from_school: str, to_school: str, to_class: str) -> None:
    """学生转学：原校上传学习空间，县平台转给新学校。 Move a learner: the old school sends their space, the hub passes it on."""
    from hub_sync.hub.downlink import Downlink

    transfer_id = Downlink(_open(data_dir).db).transfer(student, from_school, to_school, to_class)
    click.echo(f"已开始转学 Transfer {transfer_id}: {student} {from_school} -> {to_school}；"
               "原校下次同步时上传学习空间，之后新学校收到 (the old school sends the space with its next sync, then the new school gets it)")


@click.command("transfers")
@HUB_DATA
def hub_transfers(data_dir: Path) -> None:
    """列出转学及其状态。 List transfers and their state."""
    from hub_sync.hub.downlink import Downlink

    for t in Downlink(_open(data_dir).db).transfers():
        click.echo(f"{t['transfer_id']}  {t['number']}  {t['from_school']} -> {t['to_school']}  {t['status']}")


@click.command("rotate-key")
@HUB_DATA
def hub_rotate_key(data_dir: Path) -> None:
    """换一把在线签名密钥（根密钥签发新的根元数据）。 Rotate the online signing key (a new root, signed by the root key)."""
    from hub_sync.hub.publisher import rotate_online_key

    keyid = rotate_online_key(_open(data_dir))
    click.echo(f"已换新的在线密钥 New online key {keyid[:16]}; 学校设备下次同步时跟上 schools follow at their next sync")


COMMANDS = [hub_init, hub_status, hub_backup, hub_restore, hub_channel, hub_channels, hub_add_resource, hub_remove_resource, hub_publish, hub_serve, hub_enroll,
            hub_devices, hub_revoke, hub_rotate_key, hub_notice, hub_roster_change, hub_transfer, hub_transfers]


def register(group: click.Group) -> None:
    """Add these commands to the CLI's ``hub`` group."""
    for cmd in COMMANDS:
        group.add_command(cmd)
