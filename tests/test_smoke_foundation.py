"""First checks of the foundation: catalogue search in Chinese, blob writes, the real server."""

import httpx
import pytest

from edge_agent.demo.run import load_sample_library


def test_two_character_chinese_query_finds_pinyin_lesson(appliance):
    load_sample_library(appliance)
    total, found = appliance.catalogue.search("拼音")
    titles = [r.title for r in found]
    assert "汉语拼音 第一课 a o e" in titles
    assert all("拼音" in (r.title + r.chapter + r.description) for r in found)
    total_math, math = appliance.catalogue.search("练习", subject="数学")
    assert total_math == 2 and {r.subject for r in math} == {"数学"}


@pytest.mark.slow  # a real server started and stopped: ~7 s
def test_real_server_answers_range_with_206(appliance, serve_edge):
    load_sample_library(appliance)
    data_dir = appliance.data_dir
    appliance.close()
    server = serve_edge(data_dir)
    r = httpx.get(server.base + "/api/v1/resources", params={"q": "拼音 第一课"})
    res = r.json()["resources"][0]
    f = res["files"][0]
    part = httpx.get(server.base + f["url"], headers={"Range": "bytes=0-9"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-9/{f['size']}"
    assert len(part.content) == 10
