"""An offered upload's files travel with the sync: signed by the device, only files of
its own pending offers, hash-checked into the hub's store, retried when the hub
stumbles, and never sent twice."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from fixtures.common import SCHOOL
from fixtures.servers import HubInFront
from fixtures.spaces import build_world

from edge_agent.const import DEVICE_KEY_FILE
from edge_agent.spaces.people import get_person
from edge_agent.spaces.uploads import offer_to_county
from edge_agent.sync import offer_files
from edge_agent.sync.usage_sync import upload_pending
from edge_agent.wiring import create_served_app
from hub_sync.core.keys import generate_key, load_signer
from hub_sync.formats.offer_upload import CLAIM_HEADER, FILES_PATH, claim_header
from hub_sync.hub.offers import Offers

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_kdf")]


@pytest.fixture
def offering(county):
    """A school whose teacher offered a picture to the county (not synced yet)."""
    school = county.school(SCHOOL, "a")
    world = build_world(school, create_served_app(school.config, appliance=school).test_client())
    offer_to_county(school.db, get_person(school.db, world.ids["teacher"]), world.ids["upload"])
    sha = school.catalogue.get(world.ids["upload"]).files[0].sha256
    return school, sha


def put(url: str, sha: str, body: bytes, claim: str | None, **extra: str) -> httpx.Response:
    headers = {**({CLAIM_HEADER: claim} if claim is not None else {}), **{k.replace("_", "-"): v for k, v in extra.items()}}
    return httpx.put(url + FILES_PATH + sha, content=body, headers=headers, timeout=30)


def test_the_offered_file_reaches_the_hub_with_the_sync_and_is_not_sent_again(county, offering):
    school, sha = offering
    upload_pending(school, county.url)
    assert county.hub.store.has(sha)
    assert [o.files[0]["sha256"] for o in Offers(county.hub.db).list()] == [sha]
    with httpx.Client(timeout=30) as client:
        assert offer_files.send(school, client, county.url) == 0     # the hub has it: nothing is sent


def test_the_hub_refuses_files_it_was_not_offered_or_that_do_not_match(county, offering):
    school, sha = offering
    upload_pending(school, county.url)
    county.hub.store.remove(sha)                                       # as if the upload had been cut
    signer = load_signer(school.data_dir / DEVICE_KEY_FILE)
    with school.store.open(sha) as f:
        good = f.read()
    r = put(county.url, sha, good, None)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_format"
    stranger = generate_key(school.data_dir / "other.pem")             # not the device's key
    r = put(county.url, sha, good, claim_header(school.device_id, sha, stranger))
    assert r.status_code == 403
    other = "ab" * 32
    r = put(county.url, other, good, claim_header(school.device_id, other, signer))
    assert r.status_code == 403 and "不属于" in r.json()["error"]["message"]
    r = put(county.url, sha, good[:-1] + b"!", claim_header(school.device_id, sha, signer))
    assert r.status_code == 400 and "sha256" in r.json()["error"]["message_en"]
    r = put(county.url, sha, good, base64.b64encode(b"not an envelope").decode())
    assert r.status_code == 400
    claim = claim_header(school.device_id, sha, signer)
    n = len(good)
    r = put(county.url, sha, good[:-1] + b"!", claim, Content_Range=f"bytes 0-{n - 1}/{n}")   # resumable, but altered
    assert r.status_code == 400 and "sha256" in r.json()["error"]["message_en"]
    r = put(county.url, sha, good[5:], claim, Content_Range=f"bytes 5-{n - 1}/{n}")            # not where the hub is
    assert r.status_code == 409 and r.json()["error"]["details"]["offset"] == 0
    r = put(county.url, sha, good[:10], claim, Content_Range=f"bytes 0-{n - 1}/{n}")          # length and range disagree
    assert r.status_code == 400
    assert not any((county.hub.data_dir / "offer-parts").iterdir())
    assert not county.hub.store.has(sha)                                # nothing was stored by any of them
    with httpx.Client(timeout=30) as client:
        assert offer_files.send(school, client, county.url) == 1        # the next sync sends it again
    assert county.hub.store.has(sha)


class StumblingHub(HubInFront):
    """The real hub app behind a front that answers 503 to the first ``failures`` file uploads."""

    failures = 2

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ["REQUEST_METHOD"] == "PUT" and self.failures > 0:
            self.failures -= 1
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"busy"]
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        answer = self.real.open(environ["PATH_INFO"], method=environ["REQUEST_METHOD"], data=body, headers=headers,
                                content_type=environ.get("CONTENT_TYPE"))
        start_response(answer.status, list(answer.headers.items()))
        return [answer.data]


def test_a_hub_that_stumbles_gets_the_file_on_a_retry(county, offering):
    school, sha = offering
    front = StumblingHub(county.hub)
    try:
        upload_pending(school, front.url)
        assert county.hub.store.has(sha) and front.failures == 0
    finally:
        front.close()


class CuttingHub(HubInFront):
    """The real hub app behind a link that drops the first file upload half-way (the hub
    reads half the body, then the connection is gone); the device gets a 502."""

    def __init__(self, hub) -> None:
        super().__init__(hub)
        self.cut = True
        self.bodies: list[int] = []                       # the size of each file upload the device sent

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ["REQUEST_METHOD"] == "PUT":
            self.bodies.append(len(body))
        if environ["REQUEST_METHOD"] == "PUT" and self.cut:
            self.cut = False
            self.real.open(environ["PATH_INFO"], method="PUT", input_stream=io.BytesIO(body[: len(body) // 2]),
                           headers=headers, content_type=environ.get("CONTENT_TYPE"),
                           environ_overrides={"CONTENT_LENGTH": str(len(body))})
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return [b"link lost"]
        answer = self.real.open(environ["PATH_INFO"], method=environ["REQUEST_METHOD"], data=body, headers=headers,
                                content_type=environ.get("CONTENT_TYPE"))
        start_response(answer.status, list(answer.headers.items()))
        return [answer.data]


def test_a_cut_upload_resumes_where_the_hub_stopped(county, offering):
    school, sha = offering
    size = school.store.size_of(sha)
    front = CuttingHub(county.hub)
    try:
        upload_pending(school, front.url)
    finally:
        front.close()
    assert county.hub.store.has(sha) and county.hub.store.verify(sha)
    # the whole file, then (after asking where the hub's copy ends) only the rest of it
    assert front.bodies == [size, size - size // 2]
    assert not any((county.hub.data_dir / "offer-parts").iterdir())
