"""Search input is bounded: a query of hundreds of words, or a very long one, gets a clear
400 (Chinese and English) from the served appliance's API and library page, not a 500;
ordinary searches, Chinese two-character words included, still work."""

from __future__ import annotations

import httpx
import pytest

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.const import SEARCH_MAX_CHARS, SEARCH_MAX_TERMS
from edge_agent.demo.run import load_sample_library


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from fixtures.servers import ServerProcess, free_port

    data_dir = tmp_path_factory.mktemp("search") / "data"
    appliance = Appliance.open(EdgeConfig.load(data_dir, {"free_space_reserve_mb": 1, "advertise": False}))
    load_sample_library(appliance)
    appliance.close()
    port = free_port()
    server = ServerProcess(["edge", "serve", "--data", str(data_dir), "--port", str(port), "--no-announce"], port).wait()
    yield server.base
    server.stop()


def test_three_hundred_short_terms_are_a_clear_400(base):
    q = " ".join(f"a{i % 10}" for i in range(300))
    r = httpx.get(base + "/api/v1/resources", params={"q": q}, timeout=10)
    assert r.status_code == 400
    error = r.json()["error"]
    assert "搜索词太多" in error["message"] and "too many search words (300)" in error["message_en"]
    page = httpx.get(base + "/library", params={"q": q}, timeout=10)
    assert page.status_code == 400 and "搜索词太多" in page.text


def test_a_very_long_query_is_a_clear_400(base):
    r = httpx.get(base + "/api/v1/resources", params={"q": "数" * (SEARCH_MAX_CHARS + 1)}, timeout=10)
    assert r.status_code == 400 and "search text too long" in r.json()["error"]["message_en"]
    r = httpx.get(base + "/api/v1/resources", params={"subject": "x" * 1000}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


def test_searches_within_the_bounds_still_find(base):
    r = httpx.get(base + "/api/v1/resources", params={"q": "练习"}, timeout=10)
    assert r.status_code == 200 and r.json()["total"] > 0
    words = " ".join(["练习"] * SEARCH_MAX_TERMS)
    assert httpx.get(base + "/api/v1/resources", params={"q": words}, timeout=10).status_code == 200
    assert httpx.get(base + "/library", params={"q": "拼音 识字"}, timeout=10).status_code == 200
