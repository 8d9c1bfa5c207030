"""Messages, teachers' own resources and favourites (``/api/v1/``).

* ``GET messages``, ``POST messages`` {recipient_id, body}, ``POST messages/<id>/read``
* ``POST classes/<id>/announcements`` {subject, body}
* ``GET uploads``, ``POST uploads`` (multipart: file, title, kind, stage, grade, subject, edition, chapter),
  ``POST uploads/<resource_id>/offer``
* ``GET favourites``, ``PUT|DELETE favourites/<resource_id>`` {note}
"""

from __future__ import annotations

from flask import jsonify, request

from edge_agent.errors import BadRequestError
from edge_agent.const import MIB
from edge_agent.spaces.access import TEACHING, can_manage_class, require, require_roles
from edge_agent.spaces.api_common import appliance, blueprint, body, db, int_field, viewer
from edge_agent.spaces.favourites import favourites, remove_favourite, set_favourite
from edge_agent.spaces.messages import announce, inbox, mark_read, send_direct, unread_count
from edge_agent.spaces.people import class_row, get_person
from edge_agent.spaces.upload_spool import spool
from edge_agent.spaces.uploads import META, offer_to_county, own_resource, own_resources, upload_resource

bp = blueprint("spaces_social")
LEARNERS_AND_STAFF = ("student", "teacher", "head_teacher", "admin", "parent")


@bp.get("/api/v1/messages")
def messages():
    me = viewer()
    return jsonify({"messages": inbox(db(), me), "unread": unread_count(db(), me)})


@bp.post("/api/v1/messages")
def send():
    me = viewer()
    data = body()
    recipient = get_person(db(), int_field(data, "recipient_id"))
    return jsonify(send_direct(db(), me, recipient, data.get("body"))), 201


@bp.post("/api/v1/messages/<int:message_id>/read")
def read(message_id: int):
    mark_read(db(), viewer(), message_id)
    return jsonify({"ok": True})


@bp.post("/api/v1/classes/<int:class_id>/announcements")
def announcement(class_id: int):
    me = viewer()
    class_row(db(), class_id)
    require(can_manage_class(db(), me, class_id))
    data = body()
    return jsonify(announce(db(), me, class_id, str(data.get("subject", "")), data.get("body"))), 201


@bp.get("/api/v1/uploads")
def uploads():
    me = viewer()
    require(bool(me.roles & TEACHING))
    return jsonify({"resources": own_resources(db(), me.id)})


@bp.post("/api/v1/uploads")
def upload():
    me = viewer()
    require(bool(me.roles & TEACHING))
    f = request.files.get("file")
    if f is None:
        raise BadRequestError("请选择要上传的文件（字段 file）", "choose a file to upload (field 'file')")
    max_bytes = appliance().config.max_upload_mb * MIB
    meta = {k: request.form.get(k, "") for k in (*META, "title", "kind")}
    quota = appliance().config.teacher_quota_mb * MIB
    store = appliance().store
    upload = spool(store, f.filename or "file", f.stream, max_bytes)  # to disk while hashed, never whole in memory
    try:
        return jsonify(upload_resource(db(), store, me, f.filename or "file", upload, meta, max_bytes, quota)), 201
    finally:
        upload.discard()


@bp.post("/api/v1/uploads/<resource_id>/offer")
def offer(resource_id: str):
    me = viewer()
    require(bool(me.roles & TEACHING) and own_resource(db(), resource_id)["teacher_id"] == me.id)
    return jsonify(offer_to_county(db(), me, resource_id))


@bp.get("/api/v1/favourites")
def list_favourites():
    me = viewer()
    require_roles(me, *LEARNERS_AND_STAFF)
    return jsonify({"favourites": favourites(db(), me.id)})


@bp.put("/api/v1/favourites/<resource_id>")
def put_favourite(resource_id: str):
    me = viewer()
    require_roles(me, *LEARNERS_AND_STAFF)
    return jsonify(set_favourite(db(), me.id, resource_id, body().get("note", "")))


@bp.delete("/api/v1/favourites/<resource_id>")
def delete_favourite(resource_id: str):
    me = viewer()
    require_roles(me, *LEARNERS_AND_STAFF)
    remove_favourite(db(), me.id, resource_id)
    return jsonify({"ok": True})
