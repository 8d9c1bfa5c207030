"""The console's home page: what each role can do here, one link per page area."""

from __future__ import annotations

from flask import redirect, render_template

from hub_sync.hub.accounts import ROLES
from hub_sync.hub.console.auth import console_blueprint, current_account, require_role

bp = console_blueprint("console_home")


@bp.get("/console")
def bare():
    return redirect("/console/")


@bp.get("/console/")
@require_role(*ROLES)
def home():
    """Every role lands here after logging in."""
    return render_template("county/home.html", me=current_account())
