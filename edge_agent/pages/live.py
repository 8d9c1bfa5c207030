"""The live lesson's (专递课堂) pages: the classroom screen and the pupil's tablet.

    GET /classroom/live   the classroom screen: what is on now and next, and the lesson playing
                          from this appliance (no login: the screen shows what the class sees)
    GET /student/live     a logged-in pupil's tablet: the lesson, raise a hand, ask a short
                          question, answer the central teacher's poll

Both play ``/live/<L>/master.m3u8`` (written by the media pipeline, ``edge_agent.live``) with the
vendored hls.js (``classroom_ui/static/vendor``); the timetable comes from the county
(``edge_agent.sync.live_timetable``) read with the appliance's trusted clock. The tablet's
messages go to ``/api/v1/live/`` (``edge_agent.sync.interaction_api``) through the outbox.
"""

from __future__ import annotations

import time
from datetime import datetime

from flask import current_app, render_template

from edge_agent.pages.spaces_bridge import space_blueprint, viewer
from edge_agent.spaces.errors import AuthRequiredError, ForbiddenError
from edge_agent.sync.live_timetable import current_schedule

bp = space_blueprint("live_pages", "/student/login")


@bp.app_template_filter("live_time")
def live_time(iso: str) -> str:
    """A lesson's ISO time as this appliance's local hour and minute."""
    return time.strftime("%H:%M", time.localtime(datetime.fromisoformat(iso).timestamp()))


def _schedule() -> dict:
    appliance = current_app.extensions["appliance"]
    return current_schedule(appliance.db, appliance.clock).to_json()


@bp.get("/classroom/live")
def screen():
    return render_template("live_screen.html", **_schedule())


@bp.get("/student/live")
def tablet():
    me = viewer()
    if me is None:
        raise AuthRequiredError("请先登录", "log in first")
    if not me.is_student:
        raise ForbiddenError("这是学生的页面，请用学生账号登录", "this page is for students; log in as a student")
    return render_template("student/live.html", **_schedule())
