"""The content blueprint: status, catalogue search and file serving.

* ``GET /api/v1/status``
* ``GET /api/v1/resources?q=&stage=&grade=&subject=&edition=&chapter=&kind=&source=&limit=&offset=``
* ``GET /api/v1/resources/<id>`` and ``GET /api/v1/facets``
* ``GET /content/<sha256>[/<name>]``: a catalogued file by its hash (immutable)
* ``GET /r/<resource_id>/<path>``: a file by its place in a resource, so an HTML
  lesson's relative links work. Looked up in the catalogue, never on disk by
  name, so no path can leave the store.

Exercise answers stay on the server: a blob the catalogue marks as an answer key
(``Catalogue.is_answer_key``) is served by either content route only to a request
that ``app.extensions[ANSWER_KEY_READER]`` accepts (the learning spaces install
it: a logged-in teacher or administrator), privately and never cached by others;
everyone else gets 403. Students get the questions from the assignment API and
their grades from the server.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from edge_agent.library.catalogue import FILTERS, Resource, is_answer_file
from edge_agent.errors import BadRequestError, NotFoundError, TeachersOnlyError
from edge_agent.library.file_response import accel_response, file_response
from edge_agent.library.response_cache import ResponseCache

bp = Blueprint("content", __name__)

# app.extensions key: a callable answering whether the current request may read
# exercise answer keys (installed by edge_agent.spaces.register; absent: nobody may)
ANSWER_KEY_READER = "answer_key_reader"


def appliance():
    return current_app.extensions["appliance"]


def resource_json(r: Resource) -> dict:
    data = r.row()
    data["files"] = [
        {"path": f.path, "url": f"/content/{f.sha256}/{f.path.rsplit('/', 1)[-1]}", "sha256": f.sha256,
         "size": f.size, "mime": f.mime, "teachers_only": is_answer_file(r.kind, f)}
        for f in r.files
    ]
    data["url"] = f"/r/{r.id}/{r.files[0].path}" if r.files else None
    return data


@bp.get("/api/v1/status")
def status():
    return jsonify(appliance().status())


@bp.get("/api/v1/resources")
def resources():
    """Search answers are cached per app and catalogue generation (see response_cache)."""
    answers = current_app.extensions.setdefault("catalogue_answers", ResponseCache())
    key = (appliance().catalogue.generation(), request.query_string)
    body = answers.get(key)
    if body is None:
        body = _search().get_data()
        answers.put(key, body)
    return Response(body, mimetype="application/json")


def _search():
    args = request.args
    try:
        limit = int(args.get("limit", 50))
        offset = int(args.get("offset", 0))
    except ValueError as exc:
        raise BadRequestError("limit 和 offset 必须是整数", "limit and offset must be whole numbers") from exc
    unknown = set(args) - set(FILTERS) - {"q", "limit", "offset"}
    if unknown:
        raise BadRequestError(f"未知的参数：{', '.join(sorted(unknown))}", f"unknown parameter(s): {', '.join(sorted(unknown))}")
    filters = {k: args[k] for k in FILTERS if args.get(k)}
    total, page = appliance().catalogue.search(args.get("q", ""), limit=limit, offset=offset, **filters)
    return jsonify({"total": total, "limit": limit, "offset": offset, "resources": [resource_json(r) for r in page]})


@bp.get("/api/v1/resources/<resource_id>")
def resource(resource_id: str):
    return jsonify(resource_json(appliance().catalogue.get(resource_id)))


@bp.get("/api/v1/facets")
def facets():
    return jsonify({k: [{"value": v, "count": c} for v, c in rows] for k, rows in appliance().catalogue.facets().items()})


def _answer_key_check(sha256: str) -> bool:
    """True when the blob is an answer key that this request may read; 403 when it may not;
    False for every other blob."""
    if not appliance().catalogue.is_answer_key(sha256):
        return False
    may_read = current_app.extensions.get(ANSWER_KEY_READER)
    if may_read is None or not may_read():
        raise TeachersOnlyError("练习文件里有答案，只有老师可以打开。学生请在作业里做题",
                                "exercise files hold the answers and only teachers may open them; "
                                "students answer the questions in their assignment")
    return True


# nginx front: /content/ and /r/ bytes may be sent only after these views' checks (X-Accel-Redirect), never by a
# direct location on the store: answer keys (Catalogue.is_answer_key) are teachers-only, whichever way bytes go.
@bp.route("/content/<sha256>", methods=["GET", "HEAD"])
@bp.route("/content/<sha256>/<name>", methods=["GET", "HEAD"])
def content(sha256: str, name: str | None = None):
    app = appliance()
    entry = app.catalogue.file_by_sha(sha256) if len(sha256) == 64 else None
    if entry is None:
        raise NotFoundError("找不到该文件", "no such file")
    private = _answer_key_check(sha256)
    return _send(sha256, entry.mime, immutable=not private, private=private)


@bp.route("/r/<resource_id>/<path:path>", methods=["GET", "HEAD"])
def resource_file(resource_id: str, path: str):
    app = appliance()
    entry = app.catalogue.file_in_resource(resource_id, path)
    if entry is None:
        raise NotFoundError("找不到该文件", "no such file")
    private = _answer_key_check(entry.sha256)
    return _send(entry.sha256, entry.mime, immutable=False, private=private)


def _send(sha256: str, mime: str, immutable: bool, private: bool) -> Response:
    """The blob's bytes: sent by nginx (``X-Accel-Redirect``) behind the front, else by
    gunicorn's sendfile. Not hashed here: a blob is hashed as it is written and again
    by the background scrub, which moves a damaged one out of the store (integrity)."""
    store = appliance().store
    path = store.path_for(sha256)
    if not path.is_file():
        raise NotFoundError("文件不在本机，可能尚未同步。请稍后再试或联系技术员",
                            "file is not on this device (not synced yet?); try later or ask the technician")
    location = current_app.config.get("X_ACCEL_BLOBS")
    if location:
        return accel_response(path, store.root, location, mime, immutable, private)
    return file_response(path, mime, sha256, immutable=immutable, private=private)
