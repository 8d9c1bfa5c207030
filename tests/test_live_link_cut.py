"""Pupils' questions while the teaching point's link is cut: the served appliance (in its own
network namespace behind a 2 Mbit/s ``tc tbf`` link, ``ip link set down`` to cut it) keeps them
queued and delivers them, in order and once each, when the link returns."""

from __future__ import annotations

import json
import signal
import sys
from datetime import datetime, timedelta, timezone

import pytest
from fixtures.common import REPO
from fixtures.link import NEEDS_LINK
from fixtures.servers import GunicornHub, free_port
from fixtures.spaces import SCHOOL_ROSTER, roster_csv, student_number
from fixtures.usage import enroll

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.spaces.people import find_by_number
from edge_agent.spaces.roster_apply import import_roster
from edge_agent.sync.live_outbox import pending_count, queue
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.processes import SupervisedProcess, wait_until
from hub_sync.hub import Hub
from hub_sync.hub.live_timetable import LiveTimetable

pytestmark = [*NEEDS_LINK, pytest.mark.slow]  # a served appliance in a namespace, the link cut for a few rounds
LESSON = "math-0302"
SCHOOL = "TP002"


def texts(hub: Hub) -> list[tuple[int, str]]:
    return [(seq, json.loads(body).get("text", "")) for seq, body in
            hub.db.execute("select seq, body from live_messages order by seq")]


def test_questions_asked_while_the_link_is_down_arrive_in_order_when_it_returns(link, tmp_path, hub_db):
    hub = Hub.init(tmp_path / "hub", reserve_mb=1, db_url=hub_db())
    server = GunicornHub(hub.data_dir, free_port(), host=link.hub_ip).start()
    appliance = Appliance.open(EdgeConfig.load(tmp_path / "edge", {"free_space_reserve_mb": 1, "advertise": False,
                                                                   "hub_url": server.url, "front": "none"}))
    edge = None
    try:
        enroll(appliance, hub, school_code=SCHOOL)
        (appliance.data_dir / "settings.json").write_text(json.dumps({"hub_url": server.url, "front": "none"}), "utf-8")
        import_roster(appliance.db, roster_csv(SCHOOL_ROSTER))
        pupil = find_by_number(appliance.db, student_number(1))
        LiveTimetable(hub.db).schedule(SCHOOL, {"lesson": LESSON, "start": (datetime.now(timezone.utc) - timedelta(minutes=2)).isoformat(),
                                                "minutes": 40, "subject": "数学"})
        assert upload_pending(appliance, server.url).downlink.applied == 1
        port = free_port()
        edge = SupervisedProcess(link.inside(sys.executable, "-m", "edge_agent.cli", "edge", "serve", "--data",
                                             str(appliance.data_dir), "--port", str(port), "--no-announce"), cwd=REPO)
        queue(appliance, pupil, LESSON, "question", text="第一个问题")
        wait_until(lambda: texts(hub) == [(1, "第一个问题")], 30, "the first question at the hub (link up)")

        link.down()
        queue(appliance, pupil, LESSON, "question", text="断网时的第二个问题")
        queue(appliance, pupil, LESSON, "hand")
        queue(appliance, pupil, LESSON, "question", text="断网时的第三个问题")
        with pytest.raises(TimeoutError):  # several rounds of the live link go by with the cable out
            wait_until(lambda: len(texts(hub)) > 1, 8, "nothing to arrive while the link is down")
        assert pending_count(appliance.db) == 3 and edge.running()

        link.up()
        wait_until(lambda: len(texts(hub)) == 4, 30, "the queued messages at the hub once the link is back")
        assert texts(hub) == [(1, "第一个问题"), (2, "断网时的第二个问题"), (3, ""), (4, "断网时的第三个问题")]
        wait_until(lambda: pending_count(appliance.db) == 0, 10, "the appliance to mark them delivered")
    finally:
        if edge is not None:
            edge.stop()
        server.kill(signal.SIGTERM)
        appliance.close()
        hub.close()
