"""Accounts page (bureau admins only): list the console's accounts, add one, disable one.

The command line does the same (``school-edge hub user add/list/disable``).
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, request

from hub_sync.hub.accounts import ROLES, Accounts
from hub_sync.hub.audit import AuditLog
from hub_sync.hub.console.auth import console_blueprint, current_account, require_role

bp = console_blueprint("console_staff")


def _accounts() -> Accounts:
    return Accounts(current_app.extensions["hub"].db)


@bp.get("/console/accounts")
@require_role("bureau_admin")
def accounts():
    """Every account, with its role and school."""
    return render_template("county/accounts.html", me=current_account(), accounts=_accounts().all(), roles=ROLES,
                           done=request.args.get("done"))


@bp.post("/console/accounts")
@require_role("bureau_admin")
def add():
    form = request.form
    account = _accounts().add(form.get("name", ""), form.get("role", ""), form.get("password", ""), form.get("school"))
    AuditLog(current_app.extensions["hub"].db).append(current_account().name, "account_added", f"account:{account.name}",
                                                      "", {"role": account.role, "school": account.school})
    return redirect("/console/accounts?done=added")


@bp.post("/console/accounts/<name>/disable")
@require_role("bureau_admin")
def disable(name: str):
    account = _accounts().disable(name)
    AuditLog(current_app.extensions["hub"].db).append(current_account().name, "account_disabled", f"account:{account.name}",
                                                      request.form.get("reason", ""), {})
    return redirect("/console/accounts?done=disabled")
