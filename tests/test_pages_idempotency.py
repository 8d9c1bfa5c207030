"""Idempotency keys: a tablet that retries an answer or a hand-in never records it twice."""

import pytest

from fixtures.browser import prepare_school
from edge_agent.demo.run import load_sample_library
from edge_agent.app import create_app


@pytest.fixture
def school(appliance):
    load_sample_library(appliance)
    return prepare_school(appliance)


@pytest.fixture
def student(appliance, school):
    client = create_app(appliance.config, appliance=appliance).test_client()
    who = school.students["王小明"]
    r = client.post("/api/v1/login/student", json={"class_id": school.class_id, "person_id": who["id"], "pin": who["pin"]},
                    headers={"X-Requested-With": "test"})
    assert r.status_code == 200
    client.csrf = r.json["csrf_token"]
    return client


def count(appliance, table, assignment_id):
    return appliance.db.execute(f"select count(*) from {table} where assignment_id = ?", [assignment_id]).fetchone()[0]


def post(client, url, body, key=None):
    headers = {"X-CSRF-Token": client.csrf}
    if key:
        headers["Idempotency-Key"] = key
    return client.post(url, json=body, headers=headers)


def test_the_same_answer_sent_twice_with_one_key_is_recorded_once(student, school, appliance):
    url = f"/api/v1/assignments/{school.assignments['exercise']}/answers"
    first = post(student, url, {"answers": {"q1": 1}}, key="k-1")
    again = post(student, url, {"answers": {"q1": 1}}, key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json
    assert count(appliance, "answers", school.assignments["exercise"]) == 1
    post(student, url, {"answers": {"q1": 1}}, key="k-2")
    assert count(appliance, "answers", school.assignments["exercise"]) == 2


def test_a_key_reused_for_another_request_is_refused_and_changes_nothing(student, school, appliance):
    post(student, f"/api/v1/assignments/{school.assignments['exercise']}/answers", {"answers": {}}, key="k-x")
    other = post(student, f"/api/v1/assignments/{school.assignments['work']}/submissions", {"text": "我的作业"}, key="k-x")
    assert other.status_code == 422 and "Idempotency-Key" in other.json["error"]["message"]
    assert count(appliance, "submissions", school.assignments["work"]) == 0


def test_a_refusal_that_may_pass_later_is_not_remembered(student, school, appliance):
    url = f"/api/v1/assignments/{school.assignments['work']}/submissions"
    stale = student.post(url, json={"text": "我的作业"}, headers={"X-CSRF-Token": "wrong", "Idempotency-Key": "k-3"})
    assert stale.status_code == 403
    ok = post(student, url, {"text": "我的作业"}, key="k-3")
    assert ok.status_code == 201 and "Idempotent-Replayed" not in ok.headers
    assert count(appliance, "submissions", school.assignments["work"]) == 1


def test_requests_without_a_key_are_not_deduplicated(student, school, appliance):
    url = f"/api/v1/assignments/{school.assignments['work']}/submissions"
    post(student, url, {"text": "一"})
    post(student, url, {"text": "一"})
    assert count(appliance, "submissions", school.assignments["work"]) == 2
