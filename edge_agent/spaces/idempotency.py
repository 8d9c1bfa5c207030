"""Idempotency keys for the API's state-changing requests.

A tablet whose Wi-Fi drops cannot know whether its answer arrived; it sends the
same request again with the same ``Idempotency-Key`` header. The first request
with a key (per person) runs and its response is kept; a repeat gets the kept
response (``Idempotent-Replayed: true``) and changes nothing. A repeat that
arrives while the first is still running is told to retry (503, Retry-After).

Responses that may succeed later (401, 403, 408, 429, 5xx) are not kept, so the
same request can go through once the student has logged in again.

The table lives here, with the API it serves; ``edge_agent.appliance`` applies its
migrations when the appliance is opened, and ``init_app`` (called by
``edge_agent.spaces.register``) only adds the request hooks.
"""

from __future__ import annotations

import time

import sqlite_utils
from flask import Flask, Response, current_app, g, request

from hub_sync.core.migrations import Migrations
from hub_sync.core.sqlite_db import transaction

from edge_agent.spaces.const import SESSION_COOKIE
from edge_agent.spaces.sessions import lookup_session

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 100
KEEP_S = 7 * 24 * 3600
ABANDONED_S = 60  # a claim this old with no response: the server died mid-request
RETRYABLE = {401, 403, 408, 429}

# The set keeps the name it had under ``edge_agent.pages``: data folders that recorded it keep it.
migrations = Migrations("pages_idempotency")


@migrations
def m001_idempotent_requests(db: sqlite_utils.Database) -> None:
    db.execute("create table idempotent_requests (person_id integer not null, key text not null, path text not null,"
               " status integer, body blob, mimetype text, created_at real not null, primary key (person_id, key))")


def _db():
    return current_app.extensions["appliance"].db


def _json_error(status: int, zh: str, en: str, code: str) -> Response:
    rv = current_app.json.response({"error": {"code": code, "message": zh, "message_en": en}})
    rv.status_code = status
    return rv


def claim_or_replay():
    key = request.headers.get(HEADER)
    if not key or request.method != "POST" or not request.path.startswith("/api/v1/"):
        return None
    if len(key) > MAX_KEY_CHARS:
        return _json_error(400, "Idempotency-Key 太长", "Idempotency-Key is too long", "bad_request")
    token = request.cookies.get(SESSION_COOKIE, "")
    session = lookup_session(_db(), token) if token else None
    if session is None:
        return None  # the view answers 401; nothing to remember
    db, now = _db(), time.time()
    with transaction(db):
        row = db.execute("select path, status, body, mimetype, created_at from idempotent_requests where person_id = ? and key = ?",
                         [session.person.id, key]).fetchone()
        if row is not None:
            path, status, body, mimetype, created_at = row
            if path != request.path:
                return _json_error(422, "这个 Idempotency-Key 已用于另一个请求", "this Idempotency-Key was used for another request", "bad_request")
            if status is not None:
                rv = Response(body, status=status, mimetype=mimetype)
                rv.headers["Idempotent-Replayed"] = "true"
                return rv
            if now - created_at < ABANDONED_S:
                rv = _json_error(503, "上一次提交还在处理中，请稍后", "the same request is still being processed; retry shortly", "in_progress")
                rv.headers["Retry-After"] = "1"
                return rv
            db.execute("delete from idempotent_requests where person_id = ? and key = ?", [session.person.id, key])
        db.execute("delete from idempotent_requests where created_at < ?", [now - KEEP_S])
        db.execute("insert into idempotent_requests (person_id, key, path, created_at) values (?, ?, ?, ?)",
                   [session.person.id, key, request.path, now])
    g.idempotency = (session.person.id, key)
    return None


def remember(response: Response) -> Response:
    claim = g.pop("idempotency", None)
    if claim is None:
        return response
    db = _db()
    with transaction(db):
        if response.status_code >= 500 or response.status_code in RETRYABLE or response.is_streamed:
            db.execute("delete from idempotent_requests where person_id = ? and key = ?", list(claim))
        else:
            db.execute("update idempotent_requests set status = ?, body = ?, mimetype = ? where person_id = ? and key = ?",
                       [response.status_code, response.get_data(), response.mimetype, *claim])
    return response


def init_app(app: Flask) -> None:
    """Run ``claim_or_replay`` before and ``remember`` after every request of ``app``."""
    app.before_request(claim_or_replay)
    app.after_request(remember)
