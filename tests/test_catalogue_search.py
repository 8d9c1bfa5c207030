"""The catalogue: curriculum metadata, Chinese text search, filters that combine."""

import pytest

from edge_agent.library.catalogue import Resource, ResourceFile
from edge_agent.demo.run import load_sample_library
from edge_agent.errors import BadRequestError, NotFoundError

SHA = "ab" * 32


@pytest.fixture
def catalogue(appliance):
    load_sample_library(appliance)
    return appliance.catalogue


def titles(found):
    return [r.title for r in found]


def test_two_character_query_finds_the_pinyin_lesson(catalogue):
    total, found = catalogue.search("拼音")
    assert "汉语拼音 第一课 a o e" in titles(found)
    assert total == len(found) == 3  # two lessons and the rhymes: nothing without 拼音
    assert all("拼音" in r.title + r.chapter + r.description + r.keywords for r in found)


def test_titles_containing_the_whole_query_come_first(catalogue):
    _, found = catalogue.search("拼音")
    assert all("拼音" in r.title for r in found[:3])


def test_trigram_terms_search_title_and_chapter_and_combine_with_and(catalogue):
    assert set(titles(catalogue.search("小蝌蚪")[1])) == {"小蝌蚪找妈妈 课文朗读", "小蝌蚪找妈妈 教学设计"}
    assert titles(catalogue.search("小蝌蚪 朗读")[1]) == ["小蝌蚪找妈妈 课文朗读"]
    assert "分数的意义 教案" in titles(catalogue.search("分数的意义和性质")[1])  # found by its chapter


def test_filters_combine_with_the_text_query(catalogue):
    total, found = catalogue.search("拼音", kind="audio")
    assert titles(found) == ["拼音儿歌 跟读音频"] and total == 1
    total, found = catalogue.search("练习", subject="数学")
    assert total == 2 and {r.subject for r in found} == {"数学"}
    total, found = catalogue.search("", subject="语文", grade="一年级", edition="统编版")
    assert total == 5 and all(r.grade == "一年级" for r in found)
    assert catalogue.search("拼音", subject="数学") == (0, [])


def test_query_with_no_match_finds_nothing(catalogue):
    assert catalogue.search("量子力学") == (0, [])
    assert catalogue.search("%") == (0, [])  # LIKE wildcards are matched literally
    assert catalogue.search("_")[0] == 0


def test_quotes_and_fts_syntax_in_a_query_are_plain_text(catalogue):
    assert catalogue.search('"拼音" OR NEAR(') == (0, [])
    assert catalogue.search("拼音*")[0] == 0


def test_each_resource_carries_its_curriculum_metadata_and_files(catalogue):
    audio = catalogue.get("sample-00002")
    assert (audio.stage, audio.grade, audio.subject, audio.edition) == ("小学", "一年级", "语文", "统编版")
    assert audio.chapter == "汉语拼音 第一单元" and audio.kind == "audio"
    assert audio.duration_s == 6 and audio.source == "county" and audio.licence == "CC BY-NC 4.0"
    assert [f.mime for f in audio.files] == ["audio/wav"] and audio.files[0].size > 0
    pdf = catalogue.get("sample-00006")
    assert pdf.kind == "document" and pdf.pages == 1
    row = catalogue.db.execute("select size from resources where id = 'sample-00006'").fetchone()
    assert row[0] == sum(f.size for f in pdf.files)


def test_pages_of_results_add_up_to_the_total(catalogue):
    total, first = catalogue.search("", limit=10)
    _, rest = catalogue.search("", limit=10, offset=10)
    _, last = catalogue.search("", limit=10, offset=20)
    assert total == 25
    assert len({r.id for r in first + rest + last}) == 25


def test_facets_count_resources_per_value(catalogue):
    facets = dict(catalogue.facets()["subject"])
    assert facets["语文"] == 9 and facets["数学"] == 7
    assert dict(catalogue.facets()["kind"])["exercise"] == 4


def test_changing_a_title_updates_the_search_index(appliance):
    r = Resource(id="r1", title="认识钟表 微课", kind="video", subject="数学",
                 files=[ResourceFile("clock.mp4", SHA, 10, "video/mp4")])
    appliance.catalogue.upsert(r)
    assert titles(appliance.catalogue.search("钟表")[1]) == ["认识钟表 微课"]
    r.title = "认识人民币 微课"
    appliance.catalogue.upsert(r)
    assert appliance.catalogue.search("钟表") == (0, [])
    assert appliance.catalogue.search("认识人民币")[0] == 1
    appliance.catalogue.delete("r1")
    assert appliance.catalogue.search("认识人民币") == (0, [])


@pytest.mark.parametrize("change, message", [
    ({"kind": "movie"}, "kind must be one of"),
    ({"source": "internet"}, "source must be one of"),
    ({"title": "  "}, "title is empty"),
    ({"id": "../x"}, "invalid resource id"),
    ({"files": []}, "no files"),
])
def test_invalid_metadata_is_refused_and_nothing_is_stored(appliance, change, message):
    fields = {"id": "r1", "title": "有效标题", "kind": "video", "files": [ResourceFile("a.mp4", SHA, 1, "video/mp4")]}
    with pytest.raises(BadRequestError) as err:
        appliance.catalogue.upsert(Resource(**(fields | change)))
    assert message in err.value.en
    assert appliance.catalogue.count() == 0


def test_unknown_filters_and_bad_page_sizes_are_refused(catalogue):
    with pytest.raises(BadRequestError, match="unknown filter"):
        catalogue.search("", colour="red")
    with pytest.raises(BadRequestError, match="limit"):
        catalogue.search("", limit=0)
    with pytest.raises(BadRequestError, match="limit"):
        catalogue.search("", limit=100_000)


def test_unknown_resource_id_is_a_clear_not_found(catalogue):
    with pytest.raises(NotFoundError) as err:
        catalogue.get("no-such-thing")
    assert err.value.http_status == 404 and "no-such-thing" in err.value.en


def test_two_character_terms_go_through_the_pair_index_and_stay_exact(appliance):
    cat = appliance.catalogue
    cat.upsert(Resource(id="clock", title="认识钟表", kind="video", chapter="第7单元 1-5的认识",
                        files=[ResourceFile("clock.mp4", SHA, 10, "video/mp4")]))
    cat.upsert(Resource(id="money", title="认识人民币", kind="video", files=[ResourceFile("m.mp4", SHA, 10, "video/mp4")]))
    assert titles(cat.search("钟表")[1]) == ["认识钟表"]
    assert titles(cat.search("识钟")[1]) == ["认识钟表"]
    assert cat.search("表认") == (0, [])  # both characters present, but not next to each other
    assert cat.search("1-")[0] == 1 and cat.search("5的")[0] == 1  # punctuation: exact substring still decides
    assert set(titles(cat.search("认识")[1])) == {"认识钟表", "认识人民币"}
    plan = " ".join(str(r) for r in cat.db.execute(
        "explain query plan select rowid from resources_bigrams where resources_bigrams match '\"钟表\"'"))
    assert "VIRTUAL TABLE" in plan
    cat.delete("clock")
    pairs = cat.db.execute("select count(*) from resources_bigrams").fetchone()[0]
    assert pairs == cat.count() == 1 and cat.search("钟表") == (0, [])


def test_upgrading_an_existing_catalogue_builds_the_pair_index(catalogue):
    from edge_agent.library.schema import migrations

    db = catalogue.db
    db.execute("drop table resources_bigrams")
    db.execute("delete from _migrations where migration_set = 'edge_agent' and name = 'm003_bigram_index'")
    assert migrations.apply(db) == ["m003_bigram_index"]
    assert db.execute("select count(*) from resources_bigrams").fetchone()[0] == catalogue.count() == 25
    assert "汉语拼音 第一课 a o e" in titles(catalogue.search("拼音")[1])


def test_search_answers_are_cached_until_the_catalogue_changes(appliance, client):
    before = appliance.catalogue.generation()
    first = client.get("/api/v1/resources?q=钟表").json
    assert first["total"] == 0 and client.get("/api/v1/resources?q=钟表").json == first
    appliance.catalogue.upsert(Resource(id="clock", title="认识钟表", kind="video",
                                        files=[ResourceFile("clock.mp4", SHA, 10, "video/mp4")]))
    assert appliance.catalogue.generation() != before
    assert [r["title"] for r in client.get("/api/v1/resources?q=钟表").json["resources"]] == ["认识钟表"]
    appliance.catalogue.delete("clock")
    assert client.get("/api/v1/resources?q=钟表").json["total"] == 0
    error = client.get("/api/v1/resources?q=钟表&colour=red")
    assert error.status_code == 400 and error.json["error"]["code"] == "bad_request"


def test_answer_cache_forgets_the_least_recently_used():
    from edge_agent.library.response_cache import ResponseCache

    cache = ResponseCache(entries=2)
    cache.put((1, b"a"), b"A")
    cache.put((1, b"b"), b"B")
    assert cache.get((1, b"a")) == b"A"
    cache.put((1, b"c"), b"C")
    assert cache.get((1, b"b")) is None and cache.get((1, b"a")) == b"A" and len(cache) == 2
