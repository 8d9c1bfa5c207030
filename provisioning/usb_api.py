"""The technician's USB endpoints (the page calls these; the CLI does the same work).

    GET  /api/v1/usb         sticks found in the mount roots, each with its plan
                             (what applying would do, or why it is refused)
    POST /api/v1/usb/apply   {"stick": <path from the list>, "action": "provision" |
                             "import" | "export", "passphrase": "..."}

Only a technician or administrator may use them. A device that is not yet
provisioned has no accounts, so there the endpoints answer only requests from
the device itself (loopback: the technician at its keyboard and screen). The
stick must be one the appliance found: a client cannot name any other folder.

Imports point from provisioning to edge_agent, never back: ``edge_agent.wiring``
hands ``bp`` to the app factory and the stick watcher to the runner. Importing
everything here, at module level, also means no worker can fork while a thread is
half-way through an import.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app, jsonify

from edge_agent.errors import BadRequestError
from edge_agent.spaces.api_common import blueprint, body
from edge_agent.spaces.device_access import require_device_staff

from provisioning.sneakernet import export_usb, import_usb
from provisioning.stick import stick_io
from provisioning.usb_apply import apply_stick
from provisioning.watcher import find_sticks, plan_for

bp = blueprint("usb")


def _appliance():
    return current_app.extensions["appliance"]


def _roots() -> str:
    return current_app.extensions["edge_config"].usb_mount_roots


@bp.get("/api/v1/usb")
def usb_plans():
    require_device_staff()
    appliance = _appliance()
    return jsonify({"sticks": [plan_for(appliance, p) for p in find_sticks(_roots())]})


@bp.post("/api/v1/usb/apply")
def usb_apply():
    require_device_staff()
    data = body()
    found = {str(p): p for p in find_sticks(_roots())}
    stick_path = found.get(str(data.get("stick", "")))
    if stick_path is None:
        raise BadRequestError("没有找到这个U盘，请重新插入后刷新页面", "no such stick found; plug it in again and reload the page")
    action = data.get("action", "provision")
    appliance = _appliance()
    with stick_io(stick_path):
        if action == "provision":
            passphrase = data.get("passphrase")
            result = apply_stick(appliance, Path(stick_path), str(passphrase) if passphrase else None, data.get("school") or None)
        elif action == "import":
            result = import_usb(appliance, Path(stick_path))
        elif action == "export":
            result = export_usb(appliance, Path(stick_path))
        else:
            raise BadRequestError("action 应为 provision、import 或 export", "action must be provision, import or export")
    return jsonify({"action": action, "result": result})

