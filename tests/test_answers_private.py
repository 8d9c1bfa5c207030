"""Exercise answers stay on the server: a pupil, or anyone on the Wi-Fi without a login,
fetches every exercise file, content URL, catalogue answer, assignment and page of the
real served appliance and finds no answer in any of them; a teacher does see them; the
server still grades at once. The sample exercises' answers are known (q1 [1], q2 true,
q3 [0, 2], q4 "12"/"十二"), so the assertions look for the actual answer strings."""

from __future__ import annotations

import json

import httpx
import pytest

from edge_agent.library.catalogue import ANSWER_KEY_SQL, Resource, ResourceFile, is_answer_file
from edge_agent.spaces.exercises import public_questions
from fixtures.spaces import add_exercise

ALL_RIGHT = {"q1": 1, "q2": True, "q3": [0, 2], "q4": "十二"}
# what the answer key of a sample exercise looks like in any serialisation that could leak it
ANSWER_MARKERS = ("十二", '"answer"', "answer_key", '"answer":', "\\u5341\\u4e8c")


def leaked(body: bytes | str) -> list[str]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return [m for m in ANSWER_MARKERS if m in text]


def staff_client(site, number: str) -> httpx.Client:
    c = httpx.Client(base_url=site.base, timeout=10.0, headers={"X-Requested-With": "test"})
    r = c.post("/api/v1/login/staff", json={"number": number, "password": site.school.password})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def student_client(site, name: str = "王小明") -> httpx.Client:
    who = site.school.students[name]
    c = httpx.Client(base_url=site.base, timeout=10.0, headers={"X-Requested-With": "test"})
    r = c.post("/api/v1/login/student", json={"class_id": site.school.class_id, "person_id": who["id"], "pin": who["pin"]})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def exercise_resources(client: httpx.Client) -> list[dict]:
    r = client.get("/api/v1/resources", params={"kind": "exercise", "limit": 500})
    assert r.status_code == 200
    found = r.json()["resources"]
    assert found, "the sample library has exercise sets"
    return found


def file_urls(resource: dict) -> list[str]:
    """Every URL that names an exercise file: by hash with and without name, and by its place in the resource."""
    urls = []
    for f in resource["files"]:
        urls += [f["url"], f"/content/{f['sha256']}", f"/r/{resource['id']}/{f['path']}"]
    return urls


@pytest.fixture(scope="module")
def clients(site):
    made = {"anonymous": httpx.Client(base_url=site.base, timeout=10.0), "student": student_client(site),
            "teacher": staff_client(site, site.school.teacher)}
    yield made
    for c in made.values():
        c.close()


@pytest.mark.parametrize("who", ["anonymous", "student"])
def test_no_exercise_file_reaches_a_pupil_or_a_stranger_by_any_url(clients, who):
    c = clients[who]
    for resource in exercise_resources(clients["anonymous"]):
        assert all(f["teachers_only"] for f in resource["files"])
        for url in file_urls(resource):
            for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=0-99"}),
                                    ("GET", {"If-None-Match": '"x"', "Accept-Encoding": "gzip"})):
                r = c.request(method, url, headers=headers)
                assert r.status_code == 403, (who, method, url, r.status_code)
                assert not leaked(r.content), (who, url)
                if method == "GET":
                    assert r.json()["error"]["code"] == "teachers_only"
                    assert "只有老师" in r.json()["error"]["message"]


@pytest.mark.parametrize("who", ["anonymous", "student"])
def test_catalogue_pages_and_previews_carry_questions_only(clients, who):
    c = clients[who]
    bodies = [c.get("/api/v1/resources", params={"kind": "exercise"}), c.get("/api/v1/resources", params={"q": "练习"}),
              c.get("/api/v1/facets"), c.get("/library", params={"kind": "exercise"})]
    for resource in exercise_resources(clients["anonymous"]):
        bodies += [c.get(f"/api/v1/resources/{resource['id']}"), c.get(f"/library/{resource['id']}"),
                   c.get(f"/project/{resource['id']}")]
    for r in bodies:
        assert r.status_code == 200, (r.url, r.status_code)
        assert not leaked(r.content), (r.url, leaked(r.content))
    preview = c.get(f"/library/{exercise_resources(clients['anonymous'])[0]['id']}").text
    assert "一年有（ ）个月。" in preview  # the question is there, its answer is not


def test_the_students_assignment_home_and_page_have_questions_but_no_answers(clients, site):
    c = clients["student"]
    aid = site.school.assignments["exercise"]
    a = c.get(f"/api/v1/assignments/{aid}")
    assert a.status_code == 200
    assert [q["id"] for q in a.json()["questions"]] == ["q1", "q2", "q3", "q4"]
    assert all(set(q) <= {"id", "type", "prompt", "options"} for q in a.json()["questions"])
    assert "answer_key" not in a.json()
    for r in (a, c.get("/api/v1/me/home"), c.get(f"/student/assignments/{aid}"), c.get("/student"),
              c.get("/api/v1/session")):
        assert r.status_code == 200, r.url
        assert not leaked(r.content), (r.url, leaked(r.content))


def test_grading_stays_on_the_server_and_tells_right_from_wrong_without_the_key(clients, site):
    c = clients["student"]
    aid = site.school.assignments["exercise"]
    r = c.post(f"/api/v1/assignments/{aid}/answers", json={"answers": {**ALL_RIGHT, "q4": "十三"}})
    assert r.status_code == 201, r.text
    assert r.json()["results"] == {"q1": True, "q2": True, "q3": True, "q4": False}
    assert r.json()["score"] == 3.0 and r.json()["total"] == 4.0
    assert "十二" not in r.text  # feedback says wrong, never what is right
    r = c.post(f"/api/v1/assignments/{aid}/answers", json={"answers": ALL_RIGHT})
    assert r.json()["score"] == 4.0
    again = c.get(f"/api/v1/assignments/{aid}").json()
    assert [t["score"] for t in again["attempts"]] == [3.0, 4.0]  # the pupil's own answers, kept


def test_a_teacher_opens_the_exercise_file_and_sees_the_key(clients, site):
    t = clients["teacher"]
    resource = exercise_resources(t)[0]
    for url in file_urls(resource):
        r = t.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
        assert "十二" in r.text and json.loads(r.content)["questions"][3]["answer"] == ["12", "十二"]
        # only for the teacher's browser: no shared cache may keep it for the next pupil
        assert "private" in r.headers["Cache-Control"] and "public" not in r.headers["Cache-Control"]
        assert r.headers["Content-Type"] == "application/json" and r.headers["X-Content-Type-Options"] == "nosniff"
    a = t.get(f"/api/v1/assignments/{site.school.assignments['exercise']}").json()
    assert a["answer_key"]["q4"] == ["12", "十二"] and a["answer_key"]["q3"] == [0, 2]


def test_a_technician_gets_no_answers_either(site):
    tech = staff_client(site, site.school.technician)
    try:
        resource = exercise_resources(tech)[0]
        r = tech.get(resource["files"][0]["url"])
        assert r.status_code == 403 and not leaked(r.content)
    finally:
        tech.close()


def test_other_content_is_still_public_and_cached(clients):
    r = clients["anonymous"].get("/api/v1/resources", params={"kind": "document", "limit": 1})
    f = r.json()["resources"][0]["files"][0]
    assert not f["teachers_only"]
    got = clients["anonymous"].get(f["url"])
    assert got.status_code == 200 and "immutable" in got.headers["Cache-Control"]


# --- in-process: the marks the rule relies on -------------------------------------------------

def test_exercise_files_are_marked_as_answer_keys_at_import_whatever_their_name(appliance):
    add_exercise(appliance, "ex-a")
    raw = b'{"questions": [{"id": "a", "type": "fill", "prompt": "?", "answer": ["x"]}]}'
    blob = appliance.store.put_bytes(raw)
    pic = appliance.store.put_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    appliance.catalogue.upsert(Resource(id="ex-b", title="题", kind="exercise", files=[
        ResourceFile("set.txt", blob.sha256, len(raw), "text/plain"),
        ResourceFile("figure.svg", pic.sha256, 10, "image/svg+xml")]))
    cat = appliance.catalogue
    assert cat.is_answer_key(cat.get("ex-a").files[0].sha256)
    assert cat.is_answer_key(blob.sha256)  # the key under another name and type
    assert not cat.is_answer_key(pic.sha256)  # a question's picture stays public
    # the same bytes catalogued again as a plain document are still an answer key
    appliance.catalogue.upsert(Resource(id="doc-x", title="文档", kind="document",
                                        files=[ResourceFile("copy.txt", blob.sha256, len(raw), "text/plain")]))
    assert cat.is_answer_key(blob.sha256)


def test_the_migration_marks_existing_catalogues_by_the_same_rule(appliance):
    add_exercise(appliance, "ex-a")
    rows = appliance.db.execute("select resource_id, path, mime from resource_files").fetchall()
    appliance.db.execute("update resource_files set answer_key = 0")
    appliance.db.execute(f"update resource_files set answer_key = 1 where {ANSWER_KEY_SQL}")
    for rid, path, mime in rows:
        kind = appliance.catalogue.get(rid).kind
        mark = appliance.db.execute("select answer_key from resource_files where resource_id = ? and path = ?",
                                    [rid, path]).fetchone()[0]
        assert bool(mark) == is_answer_file(kind, ResourceFile(path, "", 0, mime))


def test_questions_for_students_are_an_allow_list():
    ex = {"questions": [{"id": "q", "type": "fill", "prompt": "1+1", "answer": ["2"], "solution": "2",
                         "explanation": "one and one", "options": []}]}
    assert public_questions(ex) == [{"id": "q", "type": "fill", "prompt": "1+1", "options": []}]
