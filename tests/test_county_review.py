"""The review queue (谁接入谁负责) end to end and its bad input: a teacher's upload on a
real appliance, offered, synced with its file, previewed and approved at a served hub,
published, synced to another school; withdrawn and removed everywhere. Decisions that
must be refused (no such channel, a withdrawn one approved again, two reviewers at once,
no reason, a viewer) say so and change nothing."""

from __future__ import annotations

import concurrent.futures

import pytest
import sqlalchemy
from fixtures.common import OTHER_SCHOOL, SCHOOL
from fixtures.console import CONSOLE_PASSWORD, Session
from fixtures.spaces import build_world

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.spaces.people import get_person
from edge_agent.spaces.uploads import offer_to_county, own_resource
from edge_agent.sync.content_sync import sync_content
from edge_agent.sync.usage_sync import upload_pending
from edge_agent.wiring import create_served_app
from hub_sync.hub.accounts import Accounts
from hub_sync.hub.audit import AuditLog
from hub_sync.hub.offers import Offers
from provisioning.apply import apply_bundle
from provisioning.bundle import make_bundle

pytestmark = pytest.mark.slow  # real hub servers


def hub_state(hub, offer_id: int) -> tuple:
    """Everything a decision may change: the offer, the channels' resources, the audit log, the messages."""
    db = hub.db
    return (db.execute("select state, channel, reason, decided_by from offers where id = ?", [offer_id]).fetchone(),
            db.execute("select id, channel from hub_resources order by id").fetchall(),
            len(AuditLog(db).entries()), db.execute("select count(*) from downlink_messages").fetchone()[0])


def alert(response) -> str:
    return response.text.split('role="alert">', 1)[1].split("<", 1)[0]


def test_approve_into_a_channel_that_does_not_exist_is_refused_and_changes_nothing(console_hub):
    offer_id = console_hub.add_offer()
    before = hub_state(console_hub.hub, offer_id)
    s = console_hub.session("rev")
    r = s.post(f"/console/review/{offer_id}/approve", {"channel": "no-such-channel"}, page=f"/console/review/{offer_id}")
    assert r.status_code == 404 and "没有频道" in alert(r)
    assert hub_state(console_hub.hub, offer_id) == before
    s.get("/console/lang/en")
    r = s.post(f"/console/review/{offer_id}/approve", {"channel": "no-such-channel"}, page=f"/console/review/{offer_id}")
    assert "there is no channel" in alert(r) and hub_state(console_hub.hub, offer_id) == before
    s.close()


def test_a_withdrawn_resource_cannot_be_approved_again(console_hub):
    offer_id = console_hub.add_offer()
    s = console_hub.session("rev")
    page = f"/console/review/{offer_id}"
    assert s.post(f"{page}/approve", {"channel": "math-1"}, page=page).status_code == 302
    assert s.post(f"/console/published/{offer_id}/withdraw", {"reason": "内容有误"}, page=page).status_code == 302
    before = hub_state(console_hub.hub, offer_id)
    assert before[0][0] == "withdrawn" and f"c-{offer_id}" not in [r[0] for r in before[1]]
    r = s.post(f"{page}/approve", {"channel": "math-1"}, page=page)
    assert r.status_code == 409 and "已撤下" in alert(r) and "rev" in alert(r)
    assert hub_state(console_hub.hub, offer_id) == before
    s.close()


def test_two_reviewers_deciding_at_once_one_wins_and_the_other_is_told(console_hub):
    for _ in range(3):  # a few rounds: the race must hold whichever request the server takes first
        offer_id = console_hub.add_offer()
        page = f"/console/review/{offer_id}"
        a, b = console_hub.session("rev"), console_hub.session("rev2")
        ta, tb = a.token(page), b.token(page)
        start = hub_state(console_hub.hub, offer_id)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            approve = pool.submit(a.http.post, f"{page}/approve", data={"csrf_token": ta, "channel": "math-1"})
            reject = pool.submit(b.http.post, f"{page}/reject", data={"csrf_token": tb, "reason": "重复的资源"})
            answers = [approve.result(), reject.result()]
        codes = sorted(r.status_code for r in answers)
        assert codes == [302, 409], codes
        loser = next(r for r in answers if r.status_code == 409)
        assert "决定" in alert(loser) and "未做任何更改" in alert(loser)
        state, _, audit, messages = hub_state(console_hub.hub, offer_id)
        assert state[0] in ("approved", "rejected") and audit == start[2] + 1 and messages == start[3] + 1
        a.close()
        b.close()


def test_reject_and_withdraw_need_a_reason(console_hub):
    offer_id = console_hub.add_offer()
    before = hub_state(console_hub.hub, offer_id)
    s = console_hub.session("rev")
    r = s.post(f"/console/review/{offer_id}/reject", {"reason": "   "}, page=f"/console/review/{offer_id}")
    assert r.status_code == 400 and "原因" in alert(r) and hub_state(console_hub.hub, offer_id) == before
    s.close()


def test_the_reviewer_edits_metadata_and_the_audit_log_keeps_what_changed(console_hub):
    offer_id = console_hub.add_offer()
    subject = Offers(console_hub.hub.db).get(offer_id).meta["subject"]
    s = console_hub.session("rev")
    page = f"/console/review/{offer_id}"
    r = s.post(f"{page}/edit", {"title": "认识钟表（修订）", "kind": "html", "grade": "二年级"}, page=page)
    assert r.status_code == 302
    offer = Offers(console_hub.hub.db).get(offer_id)
    assert (offer.meta["title"], offer.meta["grade"], offer.meta["subject"]) == ("认识钟表（修订）", "二年级", subject)
    entry = AuditLog(console_hub.hub.db).entries(target=f"offer:{offer_id}")[0]
    assert entry.actor == "rev" and entry.details["changes"]["grade"] == ["一年级", "二年级"]
    r = s.post(f"{page}/edit", {"title": "", "kind": "html"}, page=page)
    assert r.status_code == 400 and Offers(console_hub.hub.db).get(offer_id).meta["title"] == "认识钟表（修订）"
    s.close()


def test_the_audit_log_refuses_every_update_and_delete(console_hub):
    db = console_hub.hub.db
    AuditLog(db).append("rev", "approved", "offer:999", "", {})
    count = len(AuditLog(db).entries())
    for sql in ("update audit_log set reason = 'changed'", "delete from audit_log"):
        with pytest.raises(sqlalchemy.exc.IntegrityError, match="append-only"):  # either engine's trigger
            db.execute(sql)
    assert len(AuditLog(db).entries()) == count


def test_previews_are_sent_with_the_sandbox_nosniff_and_ranges(console_hub):
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    offer_id = console_hub.add_offer(files={"lesson.html": (b"<script>alert(1)</script>", "text/html"),
                                            "clip.mp4": (video, "video/mp4")})
    offer = Offers(console_hub.hub.db).get(offer_id)
    lesson, clip = offer.files
    s = console_hub.session("rev")
    page = s.get(f"/console/review/{offer_id}")
    assert 'sandbox="allow-scripts allow-forms"' in page.text and "<video" in page.text
    r = s.get(f"/console/review/{offer_id}/files/{lesson['sha256']}")
    assert r.status_code == 200 and r.headers["Content-Security-Policy"].startswith("sandbox allow-scripts allow-forms")
    assert r.headers["X-Content-Type-Options"] == "nosniff" and "private" in r.headers["Cache-Control"]
    r = s.get(f"/console/review/{offer_id}/files/{clip['sha256']}", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == video[100:200]
    assert s.get(f"/console/review/{offer_id}/files/{'0' * 64}").status_code == 404
    viewer = console_hub.session("view")
    assert viewer.get(f"/console/review/{offer_id}/files/{clip['sha256']}").status_code == 403
    s.close()
    viewer.close()


@pytest.fixture
def two_schools(env, tmp_path):
    """``env``'s school, and another school provisioned on the same hub; both synced once."""
    make_bundle(env.hub, OTHER_SCHOOL, "青山小学", env.hub_url, env.rsync_url, tmp_path / "bundle2")
    other = Appliance.open(EdgeConfig.load(tmp_path / "edge2", {"free_space_reserve_mb": 1, "advertise": False}))
    try:
        apply_bundle(other, tmp_path / "bundle2")
        env.sync()
        sync_content(other)
        yield env, other
    finally:
        other.close()


def catalogue_ids(appliance) -> set[str]:
    return {r[0] for r in appliance.db.execute("select id from resources where id like 'c-%' or id like 't-%'")}


def test_review_round_trip_from_a_teacher_to_every_school_and_back_out(two_schools, fast_kdf):
    env, other = two_schools
    school = env.app
    world = build_world(school, create_served_app(school.config, appliance=school).test_client())
    rid = world.ids["upload"]
    teacher = get_person(school.db, world.ids["teacher"])
    offer_to_county(school.db, teacher, rid)
    upload_pending(school, env.hub_url)            # the shared event, then its file, signed by the device
    offers = Offers(env.hub.db).list(("pending",))
    assert [(o.resource_id, o.school_code, o.uploader) for o in offers] == [(rid, SCHOOL, teacher.name)]
    offer = offers[0]
    assert all(env.hub.store.has(f["sha256"]) for f in offer.files)
    assert own_resource(school.db, rid)["share_status"] == "pending"

    Accounts(env.hub.db).add("reviewer1", "reviewer", CONSOLE_PASSWORD)
    s = Session(env.hub_url)
    assert s.login("reviewer1").status_code == 302
    page = f"/console/review/{offer.id}"
    shown = s.get(page)
    assert shown.status_code == 200 and teacher.name in shown.text and SCHOOL in shown.text and "<img" in shown.text
    picture = s.get(f"{page}/files/{offer.files[0]['sha256']}")
    with school.store.open(offer.files[0]["sha256"]) as f:
        assert picture.status_code == 200 and picture.content == f.read()
    assert s.post(f"{page}/edit", {"title": "图形的认识（县审定）", "kind": "image", "grade": "一年级"}, page=page).status_code == 302
    r = s.post(f"{page}/approve", {"channel": "yuwen-1", "publish_now": "1"}, page=page)
    assert r.status_code == 302 and r.headers["location"].endswith("done=published")

    upload_pending(school, env.hub_url)
    mine = own_resource(school.db, rid)
    assert mine["share_status"] == "approved" and "yuwen-1" in mine["status_note"]
    sync_content(other)
    env.sync()
    published = f"c-{offer.id}"
    for appliance in (other, school):
        assert published in catalogue_ids(appliance)
        assert appliance.catalogue.get(published).title == "图形的认识（县审定）"
    assert rid in catalogue_ids(school)                 # the teacher's own copy stays theirs

    r = s.post(f"/console/published/{offer.id}/withdraw", {"reason": "图片版权待确认"}, page="/console/published")
    assert r.status_code == 302
    sync_content(other)
    env.sync()
    upload_pending(school, env.hub_url)
    assert published not in catalogue_ids(other) and published not in catalogue_ids(school)
    assert rid in catalogue_ids(school)
    mine = own_resource(school.db, rid)
    assert mine["share_status"] == "rejected" and "图片版权待确认" in mine["status_note"]
    actions = [(e.actor, e.action) for e in AuditLog(env.hub.db).entries(target=f"offer:{offer.id}")]
    assert actions == [("reviewer1", "withdrawn"), ("reviewer1", "approved"), ("reviewer1", "metadata_edited")]
    s.close()


def test_offers_that_came_on_a_stick_join_the_same_queue(console_hub):
    from hub_sync.hub.usb_offers import record_offer

    blob = console_hub.hub.store.put_bytes(b"%PDF-1.4 stick offer")
    record_offer(console_hub.hub.db, "edge-usb", OTHER_SCHOOL,
                 {"resource_id": "t-usb-1", "title": "U盘带来的教案", "kind": "document", "subject": "语文", "uploader": "刘老师",
                  "files": [{"path": "plan.pdf", "sha256": blob.sha256, "size": blob.size, "mime": "application/pdf"}]})
    s = console_hub.session("rev")
    for _ in range(2):  # looked at twice: recorded once
        assert "U盘带来的教案" in s.get("/console/review").text
    found = [o for o in Offers(console_hub.hub.db).list() if o.resource_id == "t-usb-1"]
    assert [(o.origin, o.school_code, o.uploader) for o in found] == [("usb", OTHER_SCHOOL, "刘老师")]
    page = s.get(f"/console/review/{found[0].id}")
    assert "U 盘" in page.text and '<iframe src="/console/review/' in page.text   # the PDF in a frame
    s.close()


def test_an_approval_without_publish_now_waits_for_the_next_publish(console_hub):
    from hub_sync.hub.publisher import publish, repo_for

    offer_id = console_hub.add_offer()
    before = repo_for(console_hub.hub).state().channel_versions.get("math-1", 0)
    s = console_hub.session("rev")
    r = s.post(f"/console/review/{offer_id}/approve", {"channel": "math-1"}, page=f"/console/review/{offer_id}")
    assert r.status_code == 302 and r.headers["location"].endswith("done=approved")
    assert repo_for(console_hub.hub).state().channel_versions.get("math-1", 0) == before
    assert console_hub.hub.db.execute("select channel from hub_resources where id = ?", [f"c-{offer_id}"]).fetchone()[0] == "math-1"
    assert publish(console_hub.hub).channel_versions["math-1"] == before + 1
    s.close()
