"""The audit log page: every decision and account change, newest first, read-only
(the table refuses UPDATE and DELETE; no page writes it but through the decisions)."""

from __future__ import annotations

from flask import current_app, render_template, request

from hub_sync.hub.audit import AuditLog
from hub_sync.hub.console.auth import console_blueprint, current_account, require_role

bp = console_blueprint("console_audit")
PAGE = 100


@bp.get("/console/audit")
@require_role("reviewer", "viewer")
def audit():
    before = request.args.get("before", type=int)
    target = request.args.get("target") or None
    entries = AuditLog(current_app.extensions["hub"].db).entries(target=target, limit=PAGE, before_id=before)
    return render_template("county/audit.html", me=current_account(), entries=entries, target=target,
                           more=entries[-1].id if len(entries) == PAGE else None)
