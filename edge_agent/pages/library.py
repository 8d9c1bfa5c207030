"""The library pages: browse by 学科 / 年级 / 教材版本 / 章节, search, view a resource.

Everything comes from ``Catalogue.search`` / ``facets`` / ``get``, the same
functions that answer ``/api/v1/resources``; the viewers play files from the
content routes (``/content/<sha>`` with Range, ``/r/<id>/<path>`` for lessons).
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, current_app, render_template, request
from flask_babel import lazy_gettext as _l

from hub_sync.formats.roster_line import GRADES

from edge_agent.library.catalogue import Resource
from edge_agent.const import MAX_PAGE_SIZE
from edge_agent.errors import BadRequestError, NotFoundError
from edge_agent.pages.errors import page_errors
from edge_agent.pages.spaces_bridge import attach_session
from edge_agent.spaces.exercises import load_exercise, public_questions

PAGE_SIZE = 24
BROWSE_FILTERS = ("subject", "grade", "edition", "chapter", "kind")
KIND_LABELS = {"video": _l("视频"), "audio": _l("音频"), "document": _l("文档"), "html": _l("互动课件"),
               "image": _l("图片"), "exercise": _l("练习")}
FILTER_LABELS = {"subject": _l("学科"), "grade": _l("年级"), "edition": _l("教材版本"), "chapter": _l("章节"),
                 "kind": _l("类型")}

bp = attach_session(Blueprint("library", __name__))
page_errors(bp)


def appliance():
    return current_app.extensions["appliance"]


MAIN_SUFFIXES = {"html": (".html", ".htm"), "video": (".webm", ".mp4", ".ogv"), "audio": (".wav", ".mp3", ".ogg", ".m4a"),
                 "document": (".pdf",), "exercise": (".json",)}


def main_file(r: Resource):
    """The file a viewer opens: the first of the kind's own type (a lesson's page, not its picture)."""
    suffixes = MAIN_SUFFIXES.get(r.kind, ())
    return next((f for f in r.files if f.path.lower().endswith(suffixes)), r.files[0] if r.files else None)


def _file_url(r: Resource) -> str | None:
    f = main_file(r)
    if f is None:
        return None
    return f"/content/{f.sha256}/{f.path.rsplit('/', 1)[-1]}"


def _grade_order(grade: str) -> tuple[int, str]:
    return (GRADES.index(grade) if grade in GRADES else len(GRADES), grade)


def with_display_kind(assignments: list[dict]) -> list[dict]:
    """Each assignment with ``display_kind``: the kind of its resource (video, audio ...), else its own kind."""
    catalogue = appliance().catalogue
    out = []
    for a in assignments:
        kind = a.get("kind")
        if kind == "resource" and a.get("resource_id"):
            try:
                kind = catalogue.get(a["resource_id"]).kind
            except NotFoundError:  # removed since it was assigned
                kind = "resource"
        out.append(a | {"display_kind": kind})
    return out


def viewer_model(r: Resource) -> dict:
    """What a viewer template needs to play or show this resource."""
    main = main_file(r)
    return {
        "resource": r,
        "kind_label": KIND_LABELS.get(r.kind, r.kind),
        "file_url": _file_url(r),
        "lesson_url": f"/r/{r.id}/{main.path}" if main else None,
        "mime": main.mime if main else "",
        "subtitles": [f"/r/{r.id}/{f.path}" for f in r.files if f.path.endswith(".vtt")],
    }


@bp.get("/")
def home():
    """The landing page: who are you?"""
    status = appliance().status()
    return render_template("home.html", status=status)


@bp.get("/library")
def browse():
    args = request.args
    filters = {k: args[k] for k in BROWSE_FILTERS if args.get(k)}
    try:
        offset = max(0, int(args.get("offset", 0)))
    except ValueError:
        raise BadRequestError("页码无效", "invalid page") from None
    q = args.get("q", "").strip()
    total, found = appliance().catalogue.search(q, limit=PAGE_SIZE, offset=offset, **filters)
    facets = appliance().catalogue.facets()
    # chapters only make sense within a subject and grade: list those of the current filter
    chapters: list[str] = []
    if filters.get("subject") or filters.get("grade"):
        scope = {k: v for k, v in filters.items() if k in ("subject", "grade", "edition")}
        _, in_scope = appliance().catalogue.search("", limit=MAX_PAGE_SIZE, **scope)
        chapters = sorted({r.chapter for r in in_scope if r.chapter})
    options = {"subject": [v for v, _ in facets.get("subject", [])],
               "grade": sorted((v for v, _ in facets.get("grade", [])), key=_grade_order),
               "edition": [v for v, _ in facets.get("edition", [])],
               "chapter": chapters,
               "kind": [v for v, _ in facets.get("kind", [])]}
    def page_url(at: int) -> str:
        return "/library?" + urlencode({**{k: v for k, v in args.items() if k != "offset"}, "offset": at})

    prev_url = page_url(max(0, offset - PAGE_SIZE)) if offset > 0 else None
    next_url = page_url(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None
    return render_template("library.html", prev_url=prev_url, next_url=next_url, q=q, filters=filters, options=options, total=total, resources=found,
                           offset=offset, page_size=PAGE_SIZE, kind_labels=KIND_LABELS, filter_labels=FILTER_LABELS)


@bp.get("/library/<resource_id>")
def view(resource_id: str):
    r = appliance().catalogue.get(resource_id)
    exercise = None
    if r.kind == "exercise":
        exercise = exercise_preview(r)
    return render_template("viewer.html", exercise=exercise, **viewer_model(r))


@bp.get("/project/<resource_id>")
def project(resource_id: str):
    """Projection mode for the classroom screen: large type, no chrome."""
    r = appliance().catalogue.get(resource_id)
    return render_template("projection.html", exercise=exercise_preview(r) if r.kind == "exercise" else None,
                           **viewer_model(r))


def exercise_preview(r: Resource) -> dict | None:
    """The questions of an exercise set (the students' copy: no answers) for a preview."""
    f = next((f for f in r.files if f.path.endswith(".json")), None)
    if f is None:
        return None
    try:
        data = load_exercise(appliance().store.path_for(f.sha256).read_bytes())
    except (OSError, BadRequestError):
        return None
    return {"title": data.get("title", r.title), "questions": public_questions(data)}
