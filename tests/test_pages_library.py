"""The library pages (Flask test client): browse, search, a viewer per kind, errors as pages."""

import pytest

from edge_agent.library.catalogue import Resource, ResourceFile
from edge_agent.demo.run import load_sample_library


@pytest.fixture
def library(appliance):
    load_sample_library(appliance)
    return appliance


def test_browse_by_subject_and_grade_lists_only_matching_resources_and_their_chapters(client, library):
    page = client.get("/library?subject=语文&grade=一年级").text
    assert "汉语拼音 第一课 a o e" in page and "识字 第一单元 练习" in page
    assert "5以内的加法" not in page and "小蝌蚪" not in page
    assert '<option value="汉语拼音 第一单元" >' in page  # chapters of this subject and grade
    assert "共 5 个资源" in page


def test_search_finds_chinese_words_and_says_what_to_do_when_nothing_matches(client, library):
    assert "汉语拼音 第一课 a o e" in client.get("/library?q=拼音").text
    empty = client.get("/library?q=不存在的资源名称").text
    assert "没有找到资源" in empty and 'href="/library"' in empty


@pytest.mark.parametrize("title, element", [
    ("拼音儿歌 跟读音频", '<audio id="media" controls preload="metadata" src="/content/'),
    ("天地人 识字卡片", '<img id="media" src="/content/'),
    ("汉语拼音 第一课 a o e", '<iframe id="media" class="lesson" sandbox="allow-scripts allow-forms" src="/r/'),
    ("小蝌蚪找妈妈 教学设计", '<iframe id="media" class="document" src="/content/'),
])
def test_each_kind_opens_in_its_own_viewer(client, library, title, element):
    _, found = library.catalogue.search(title)
    page = client.get(f"/library/{found[0].id}").text
    assert element in page


def test_exercise_preview_shows_questions_but_never_the_answers(client, library):
    _, found = library.catalogue.search("5以内的加法 练习")
    page = client.get(f"/library/{found[0].id}").text
    assert "下面哪些是水果？" in page and "香蕉" in page
    assert '"answer"' not in page and "十二" not in page


def test_missing_resource_is_a_page_that_says_what_to_do(client, library):
    rv = client.get("/library/no-such-resource")
    assert rv.status_code == 404 and rv.mimetype == "text/html"
    assert "找不到资源 no-such-resource" in rv.text and 'href="/library"' in rv.text
    en = client.get("/library/no-such-resource?lang=en")
    assert "no resource no-such-resource" in en.text


def test_projection_mode_has_no_page_chrome(client, library):
    _, found = library.catalogue.search("天地人 识字卡片")
    page = client.get(f"/project/{found[0].id}").text
    assert 'class="projection"' in page and '<header class="top">' not in page and "天地人 识字卡片" in page


def test_script_in_a_title_is_shown_as_text(client, appliance):
    blob = appliance.store.put_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    evil = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1">'
    appliance.catalogue.upsert(Resource(id="evil", title=evil, kind="image", subject="语文", grade="一年级",
                                        files=[ResourceFile("a.svg", blob.sha256, blob.size, "image/svg+xml")]))
    for url in ("/library", "/library/evil", "/project/evil"):
        page = client.get(url).text
        assert "<script>window.pwned" not in page and "<img src=x" not in page
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page


def test_static_assets_are_cached_for_a_year_only_under_their_current_hash(client):
    page = client.get("/library").text
    url = page.split('<link rel="stylesheet" href="')[1].split('"')[0]
    with client.get(url) as fresh:
        assert fresh.status_code == 200 and "immutable" in fresh.headers["Cache-Control"]
        assert "max-age=31536000" in fresh.headers["Cache-Control"]
    with client.get("/assets/app.css?v=0000000000") as old:
        assert "max-age=0" in old.headers["Cache-Control"]
    assert client.get("/assets/../web.py").status_code == 404
    with client.get("/sw.js") as sw:
        assert sw.headers["Service-Worker-Allowed"] == "/" and "no-cache" in sw.headers["Cache-Control"]
