"""``school-edge hub user ...``: the county console's accounts (add, list, disable, password).

A password is never an argument on its own: it is typed at a prompt (twice), or
read from the first line of ``--password-file`` (for scripts).
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from hub_sync.hub.command_options import HUB_DATA, open_hub as _open

PASSWORD_FILE = click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                             help="从文件第一行读取密码（否则提示输入） Read the password from this file's first line (else a prompt)")


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        lines = password_file.read_text("utf-8").splitlines()
        return lines[0] if lines else ""
    return click.prompt("密码 Password", hide_input=True, confirmation_prompt="再输入一次 Repeat")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@click.group("user")
def hub_user() -> None:
    """县级平台网页的账号。 Accounts of the county console."""


@hub_user.command("add")
@HUB_DATA
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["bureau_admin", "reviewer", "technician", "viewer", "school_head"]),
              help="角色 Role")
@click.option("--school", default=None, help="学校代码（校长账号必填） School code (school_head only)")
@PASSWORD_FILE
def user_add(data_dir: Path, name: str, role: str, school: str | None, password_file: Path | None) -> None:
    """新建账号。 Add an account."""
    from hub_sync.hub.accounts import Accounts
    from hub_sync.hub.audit import AuditLog

    hub = _open(data_dir)
    account = Accounts(hub.db).add(name, role, _password(password_file), school)
    AuditLog(hub.db).append(_actor(), "account_added", f"account:{account.name}", "", {"role": role, "school": account.school})
    click.echo(f"已添加账号 Added {account.name} ({account.role}{', ' + account.school if account.school else ''})")


@hub_user.command("list")
@HUB_DATA
def user_list(data_dir: Path) -> None:
    """列出账号。 List accounts."""
    from hub_sync.hub.accounts import Accounts

    for a in Accounts(_open(data_dir).db).all():
        click.echo(f"{a.name:24} {a.role:14} {a.school or '-':12} {'正常 active' if a.active else '停用 disabled'}")


@hub_user.command("disable")
@HUB_DATA
@click.argument("name")
def user_disable(data_dir: Path, name: str) -> None:
    """停用账号（立即退出登录）。 Disable an account (its sessions end now)."""
    from hub_sync.hub.accounts import Accounts
    from hub_sync.hub.audit import AuditLog

    hub = _open(data_dir)
    account = Accounts(hub.db).disable(name)
    AuditLog(hub.db).append(_actor(), "account_disabled", f"account:{account.name}")
    click.echo(f"已停用 Disabled {account.name}")


@hub_user.command("password")
@HUB_DATA
@click.argument("name")
@PASSWORD_FILE
def user_password(data_dir: Path, name: str, password_file: Path | None) -> None:
    """设置新密码（解除锁定，结束会话）。 Set a new password (clears the lock, ends sessions)."""
    from hub_sync.hub.accounts import Accounts
    from hub_sync.hub.audit import AuditLog

    hub = _open(data_dir)
    account = Accounts(hub.db).set_password(name, _password(password_file))
    AuditLog(hub.db).append(_actor(), "password_set", f"account:{account.name}")
    click.echo(f"已设置新密码 New password set for {account.name}")
