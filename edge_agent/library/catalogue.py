"""The resource catalogue: curriculum metadata teachers search by, and files.

Tables (created by ``edge_agent.library.schema``):

* ``resources``: one row per resource with 学段 ``stage``, 年级 ``grade``, 学科
  ``subject``, 教材版本 ``edition``, 章节/单元 ``chapter``, ``kind``, ``duration_s``,
  ``pages``, ``size``, ``source``, ``licence``, ``channel``.
* ``resource_files``: (resource_id, path) -> sha256, size, mime, ``answer_key``.
  ``answer_key`` marks the files of an exercise set that hold its answers (every
  file of an ``exercise`` resource but its pictures, sound and video), set here at
  every upsert, so at import and at sync time. The content routes serve a blob
  that any row marks only to teachers (``is_answer_key``): the rule goes with the
  bytes, whichever resource or URL names them.
* ``resources_fts``: FTS5 with the trigram tokenizer over title, description,
  chapter and keywords, so Chinese text is found without word segmentation.

Trigram matching needs three characters. Two-character terms (``拼音``, most
Chinese words) use ``resources_bigrams``, an FTS5 table of each resource's
character pairs, as an index; the substring match then confirms each hit, so
punctuation split by the tokenizer never yields a false match. A one-character
term is a substring scan.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import sqlite_utils

from hub_sync.core.sqlite_db import transaction

from edge_agent.const import (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, SEARCH_FILTER_MAX_CHARS, SEARCH_MAX_CHARS,
                              SEARCH_MAX_TERMS)
from edge_agent.errors import BadRequestError, NotFoundError

KINDS = ("video", "audio", "document", "html", "image", "exercise")
SOURCES = ("national", "provincial", "county", "school", "teacher")
STAGES = ("小学", "初中", "高中")
FILTERS = ("stage", "grade", "subject", "edition", "chapter", "kind", "source", "channel")
TEXT_COLUMNS = ("title", "description", "chapter", "keywords")
# media an exercise set may show with its questions; every other file of an
# exercise resource is taken to hold answers
QUESTION_MEDIA = ("image/", "audio/", "video/")
ANSWER_KEY_SQL = ("resource_id in (select id from resources where kind = 'exercise') and "
                  + " and ".join(f"mime not like '{m}%'" for m in QUESTION_MEDIA))


@dataclass
class ResourceFile:
    path: str
    sha256: str
    size: int
    mime: str


@dataclass
class Resource:
    """A resource as teachers see it, with its files."""

    id: str
    title: str
    kind: str
    stage: str = ""
    grade: str = ""
    subject: str = ""
    edition: str = ""
    chapter: str = ""
    description: str = ""
    keywords: str = ""
    duration_s: int | None = None
    pages: int | None = None
    source: str = "county"
    licence: str = ""
    channel: str = ""
    files: list[ResourceFile] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "files"}
        data["size"] = sum(f.size for f in self.files)
        return data


def validate(resource: Resource) -> None:
    """Refuse a resource whose metadata a teacher could not search by."""
    problems = []
    if not resource.id or "/" in resource.id or ".." in resource.id:
        problems.append(("资源编号无效", "invalid resource id"))
    if not resource.title.strip():
        problems.append(("标题不能为空", "title is empty"))
    if resource.kind not in KINDS:
        problems.append((f"类型必须是 {'/'.join(KINDS)} 之一", f"kind must be one of {', '.join(KINDS)}"))
    if resource.source not in SOURCES:
        problems.append((f"来源必须是 {'/'.join(SOURCES)} 之一", f"source must be one of {', '.join(SOURCES)}"))
    if not resource.files:
        problems.append(("资源没有文件", "resource has no files"))
    if problems:
        raise BadRequestError("；".join(p[0] for p in problems), "; ".join(p[1] for p in problems))


def is_answer_file(kind: str, f: ResourceFile) -> bool:
    """Whether ``f`` of a resource of ``kind`` holds answers (see ``ANSWER_KEY_SQL``, the same rule)."""
    return kind == "exercise" and not (f.mime or "").lower().startswith(QUESTION_MEDIA)


class Catalogue:
    """Search and maintain resources in one SQLite database."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    # -- writing ---------------------------------------------------------------
    def upsert(self, resource: Resource) -> None:
        """Insert or replace a resource and its file list in one transaction."""
        self.upsert_many([resource])

    def upsert_many(self, resources: Iterable[Resource]) -> int:
        """Insert or replace several resources and their file lists in a single transaction; return how many.

        One statement per table for the whole batch (a sync switches thousands of rows at
        once); a resource listed twice is stored as its last listing. ``created_at`` of a
        resource already held is kept, its rowid too (the search indexes are keyed by it)."""
        listed = list(resources)
        batch = {r.id: r for r in listed}
        for resource in batch.values():
            validate(resource)
        if not batch:
            return 0
        now = time.time()
        rows = [resource.row() | {"created_at": now, "updated_at": now} for resource in batch.values()]
        columns = list(rows[0])
        kept = {"id", "created_at"}
        conn = self.db.conn
        with transaction(self.db):
            conn.executemany(
                f"insert into resources ({', '.join(columns)}) values ({', '.join('?' * len(columns))}) "
                f"on conflict (id) do update set {', '.join(f'{c} = excluded.{c}' for c in columns if c not in kept)}",
                [[row[c] for c in columns] for row in rows])
            rowids = dict(conn.execute("select id, rowid from resources where id in (select value from json_each(?))",
                                       [json.dumps(list(batch))]).fetchall())
            conn.executemany("delete from resources_bigrams where rowid = ?", [[rowids[rid]] for rid in batch])
            conn.executemany("insert into resources_bigrams (rowid, grams) values (?, ?)",
                             [[rowids[rid], bigrams_of(*(getattr(r, c) for c in TEXT_COLUMNS))] for rid, r in batch.items()])
            conn.executemany("delete from resource_files where resource_id = ?", [[rid] for rid in batch])
            conn.executemany("insert into resource_files (resource_id, path, sha256, size, mime, answer_key) "
                             "values (?, ?, ?, ?, ?, ?)",
                             [[rid, f.path, f.sha256, f.size, f.mime, int(is_answer_file(r.kind, f))]
                              for rid, r in batch.items() for f in r.files])
        return len(listed)

    def delete(self, resource_id: str) -> None:
        with transaction(self.db):
            self.db.execute("delete from resource_files where resource_id = ?", [resource_id])
            self.db.execute("delete from resources_bigrams where rowid in (select rowid from resources where id = ?)",
                            [resource_id])
            self.db.execute("delete from resources where id = ?", [resource_id])

    # -- reading ---------------------------------------------------------------
    def generation(self) -> int:
        """A number that changes whenever any resource or file list changes."""
        return self.db.execute("select n from catalogue_generation where id = 1").fetchone()[0]

    def count(self) -> int:
        return self.db.execute("select count(*) from resources").fetchone()[0]

    def get(self, resource_id: str) -> Resource:
        row = self.db.execute("select * from resources where id = ?", [resource_id]).fetchone()
        if row is None:
            raise NotFoundError(f"找不到资源 {resource_id}", f"no resource {resource_id}")
        cols = [d[0] for d in self.db.execute("select * from resources limit 0").description]
        return self._resources([dict(zip(cols, row))])[0]

    def titles(self, resource_ids: list[str]) -> dict[str, str]:
        """{id: title} of those of ``resource_ids`` still in the catalogue, in one query."""
        ids = list(dict.fromkeys(resource_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return dict(self.db.execute(f"select id, title from resources where id in ({marks})", ids).fetchall())

    def file_by_sha(self, sha256: str) -> ResourceFile | None:
        """The catalogued file with this hash (only catalogued blobs are served)."""
        row = self.db.execute(
            "select path, sha256, size, mime from resource_files where sha256 = ? limit 1", [sha256]
        ).fetchone()
        return ResourceFile(*row) if row else None

    def is_answer_key(self, sha256: str) -> bool:
        """Whether the blob holds an exercise's answers (any catalogue row says so):
        then only teachers may fetch its bytes."""
        row = self.db.execute("select max(answer_key) from resource_files where sha256 = ?", [sha256]).fetchone()
        return bool(row and row[0])

    def file_in_resource(self, resource_id: str, path: str) -> ResourceFile | None:
        row = self.db.execute(
            "select path, sha256, size, mime from resource_files where resource_id = ? and path = ?",
            [resource_id, path],
        ).fetchone()
        return ResourceFile(*row) if row else None

    def referenced_hashes(self) -> set[str]:
        return {r[0] for r in self.db.execute("select distinct sha256 from resource_files")}

    def search(self, q: str = "", limit: int = DEFAULT_PAGE_SIZE, offset: int = 0, **filters: str) -> tuple[int, list[Resource]]:
        """Resources matching the text ``q`` and every given metadata filter.

        Returns (total matches, one page of resources), best matches first.
        """
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise BadRequestError(f"未知的筛选条件：{', '.join(sorted(unknown))}", f"unknown filter(s): {', '.join(sorted(unknown))}")
        if not (0 < limit <= MAX_PAGE_SIZE) or offset < 0:
            raise BadRequestError(f"每页数量应在 1 到 {MAX_PAGE_SIZE} 之间", f"limit must be between 1 and {MAX_PAGE_SIZE}")
        check_search_input(q, filters)
        where, params = [], []
        order = "r.updated_at desc, r.id"
        for name, value in filters.items():
            if value:
                where.append(f"r.{name} = ?")
                params.append(value)
        long_terms, short_terms = _split_terms(q)
        if long_terms:
            match = " AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms)
            where.append("r.rowid in (select rowid from resources_fts where resources_fts match ?)")
            params.append(match)
        for term in short_terms:
            if len(term) == 2 and not any(c in _SEPARATORS for c in term):
                where.append("r.rowid in (select rowid from resources_bigrams where resources_bigrams match ?)")
                params.append('"' + term.lower().replace('"', '""') + '"')
            like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(" + " or ".join(f"r.{c} like ? escape '\\'" for c in TEXT_COLUMNS) + ")")
            params.extend([like] * len(TEXT_COLUMNS))
        if q.strip():
            # titles that contain the whole query come first
            order = "instr(r.title, ?) = 0, " + order
        sql_where = (" where " + " and ".join(where)) if where else ""
        order_params = [q.strip()] if q.strip() else []
        total = self.db.execute(f"select count(*) from resources r{sql_where}", params).fetchone()[0]
        if total <= offset:
            return total, []
        cursor = self.db.execute(
            f"select r.* from resources r{sql_where} order by {order} limit ? offset ?",
            params + order_params + [limit, offset],
        )
        cols = [d[0] for d in cursor.description]
        return total, self._resources([dict(zip(cols, row)) for row in cursor])

    def facets(self) -> dict[str, list[tuple[str, int]]]:
        """For each filter, the values present and how many resources have each."""
        out = {}
        for name in ("stage", "grade", "subject", "edition", "kind", "source"):
            out[name] = [tuple(r) for r in self.db.execute(
                f"select {name}, count(*) from resources where {name} != '' group by {name} order by {name}")]
        return out

    def _resources(self, rows: list[dict]) -> list[Resource]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        files: dict[str, list[ResourceFile]] = {i: [] for i in ids}
        marks = ",".join("?" * len(ids))
        for rid, path, sha, size, mime in self.db.execute(
            f"select resource_id, path, sha256, size, mime from resource_files where resource_id in ({marks}) order by resource_id, rowid",
            ids,
        ):
            files[rid].append(ResourceFile(path, sha, size, mime))
        fields = set(Resource.__dataclass_fields__) - {"files"}
        return [Resource(**{k: v for k, v in r.items() if k in fields}, files=files[r["id"]]) for r in rows]


_SEPARATORS = set(" \t\n-_.,;:!?'\"()[]{}/\\|<>@#$%^&*+=~`，。、；：！？（）《》“”‘’")


def bigrams_of(*texts: str | None) -> str:
    """Every pair of neighbouring characters in ``texts``, lower-cased, space-separated
    (the document stored in ``resources_bigrams``; pairs across a space are left out)."""
    grams = set()
    for text in texts:
        for word in (text or "").lower().split():
            grams.update(word[i:i + 2] for i in range(len(word) - 1))
    return " ".join(sorted(g for g in grams if not any(c in _SEPARATORS for c in g)))


def check_search_input(q: str, filters: dict[str, str]) -> None:
    """Refuse (400) a query longer than ``SEARCH_MAX_CHARS`` or of more than
    ``SEARCH_MAX_TERMS`` words, and over-long filter values, before any SQL is built."""
    q = q or ""
    terms = len(q.split())
    if terms > SEARCH_MAX_TERMS:
        raise BadRequestError(f"搜索词太多（{terms} 个），最多 {SEARCH_MAX_TERMS} 个，请少用几个词",
                              f"too many search words ({terms}); at most {SEARCH_MAX_TERMS}, use fewer words")
    if len(q) > SEARCH_MAX_CHARS:
        raise BadRequestError(f"搜索内容太长（{len(q)} 个字），最多 {SEARCH_MAX_CHARS} 个字，请缩短后再搜",
                              f"search text too long ({len(q)} characters); at most {SEARCH_MAX_CHARS}, shorten it")
    for name, value in filters.items():
        if value and len(str(value)) > SEARCH_FILTER_MAX_CHARS:
            raise BadRequestError(f"筛选条件 {name} 太长", f"filter {name} too long (at most {SEARCH_FILTER_MAX_CHARS} characters)")


def _split_terms(q: str) -> tuple[list[str], list[str]]:
    terms = [t for t in (q or "").split() if t]
    return [t for t in terms if len(t) >= 3], [t for t in terms if len(t) < 3]
