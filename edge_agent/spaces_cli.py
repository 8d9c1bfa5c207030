"""``school-edge edge import-roster`` and ``school-edge edge reset-pin``: thin
commands over ``roster_apply.import_roster`` and ``login`` (added to the ``edge`` group)."""

from __future__ import annotations

from pathlib import Path

import click

from edge_agent.spaces.errors import RosterError


def _open(data_dir: Path):
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig

    return Appliance.open(EdgeConfig.load(data_dir))


def _data_option(f):
    return click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("school-edge-data"),
                        show_default=True, help="数据目录 Data folder of the appliance")(f)


@click.command("import-roster")
@_data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_roster_cmd(data_dir: Path, file: Path) -> None:
    """导入花名册 CSV（UTF-8 或 GBK）。 Import a roster CSV (UTF-8 or GBK); all or nothing."""
    from edge_agent.spaces.roster_apply import import_roster

    appliance = _open(data_dir)
    try:
        summary = import_roster(appliance.db, file.read_bytes(), actor="cli")
    except RosterError as exc:
        click.echo(f"错误 Error: {exc}", err=True)
        for p in exc.details.get("problems", []):
            click.echo(f"  第 {p['line']} 行 line {p['line']}: {p['message']} ({p['message_en']})", err=True)
        raise SystemExit(1) from None
    finally:
        appliance.close()
    click.echo(f"新建 created: {summary['created']}  更新 updated: {summary['updated']}  "
               f"新班级 new classes: {', '.join(summary['classes_created']) or '-'}")
    for c in summary["staff_passwords"]:
        click.echo(f"  初始密码 first password  {c['number']:12} {c['name']:8} {c['password']}  (首次登录须修改 change at first login)")


@click.command("reset-pin")
@_data_option
@click.argument("number")
@click.option("--picture", is_flag=True, help="改用图片密码 Give a picture password instead of a PIN")
def reset_pin_cmd(data_dir: Path, number: str, picture: bool) -> None:
    """为学生生成新的 PIN（或图片密码）。 Give a student (by 学籍号) a new PIN or picture password."""
    from edge_agent.spaces.errors import SpaceError
    from edge_agent.spaces.login import reset_student_secret
    from edge_agent.spaces.people import Person, find_by_number

    appliance = _open(data_dir)
    try:
        student = find_by_number(appliance.db, number.strip().upper())
        if student is None or not student.is_student:
            raise SpaceError(f"找不到学籍号为 {number} 的学生", f"no student numbered {number}")
        system = Person(0, "cli", "cli", "", "", frozenset({"admin"}), "active", False)
        shown = reset_student_secret(appliance.db, system, student, "picture" if picture else "pin")
    finally:
        appliance.close()
    click.echo(f"{student.name}: " + (f"PIN {shown['pin']}" if "pin" in shown else "图片 pictures " + " ".join(shown["pictures"])))


def register(edge: click.Group) -> None:
    edge.add_command(import_roster_cmd)
    edge.add_command(reset_pin_cmd)
