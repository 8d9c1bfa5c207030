"""The content blueprint: status, catalogue search and file serving.

* ``GET /api/v1/status``
* ``GET /api/v1/resources?q=&stage=&grade=&subject=&edition=&chapter=&kind=&source=&limit=&offset=``
* ``GET /api/v1/resources/<id>`` and ``GET /api/v1/facets``
* ``GET /content/<sha256>[/<name>]``: a catalogued file by its hash (immutable)
* ``GET /r/<resource_id>/<path>``: a file by its place in a resource, so an HTML
  lesson's relative links work. Looked up in the catalogue, never on disk by
  name, so no path can leave the store.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from edge_agent.library.catalogue import FILTERS, Resource
from edge_agent.errors import BadRequestError, NotFoundError
from edge_agent.library.file_response import file_response
from edge_agent.library.response_cache import ResponseCache

bp = Blueprint("content", __name__)


def appliance():
    return current_app.extensions["appliance"]


def resource_json(r: Resource) -> dict:
    data = r.row()
    data["files"] = [
        {"path": f.path, "url": f"/content/{f.sha256}/{f.path.rsplit('/', 1)[-1]}", "sha256": f.sha256,
         "size": f.size, "mime": f.mime}
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


@bp.route("/content/<sha256>", methods=["GET", "HEAD"])
@bp.route("/content/<sha256>/<name>", methods=["GET", "HEAD"])
def content(sha256: str, name: str | None = None):
    app = appliance()
    entry = app.catalogue.file_by_sha(sha256) if len(sha256) == 64 else None
    if entry is None:
        raise NotFoundError("找不到该文件", "no such file")
    app.integrity.check(sha256, entry.size)
    return file_response(app.store.path_for(sha256), entry.mime, sha256, immutable=True)


@bp.route("/r/<resource_id>/<path:path>", methods=["GET", "HEAD"])
def resource_file(resource_id: str, path: str):
    app = appliance()
    entry = app.catalogue.file_in_resource(resource_id, path)
    if entry is None:
        raise NotFoundError("找不到该文件", "no such file")
    app.integrity.check(entry.sha256, entry.size)
    return file_response(app.store.path_for(entry.sha256), entry.mime, entry.sha256, immutable=False)
