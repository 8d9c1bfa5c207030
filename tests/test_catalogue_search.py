"""The catalogue: curriculum metadata, Chinese text search, filters that combine."""

import pytest

from edge_agent.catalogue import Resource, ResourceFile
from edge_agent.demo import load_sample_library
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
