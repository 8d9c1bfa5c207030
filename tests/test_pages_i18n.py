"""Page language: Chinese by default, English per user, and no string left untranslated."""

import re
from pathlib import Path

from babel.messages.pofile import read_po

from edge_agent.pages.i18n import PO_DIR, UI_DIR, compile_catalogues, extract_messages

JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def english_catalogue():
    with (PO_DIR / "en" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale="en")


def test_every_page_string_has_an_english_translation():
    catalogue = english_catalogue()
    used = extract_messages()
    assert len(used) > 50
    missing = [f"{msgid} ({places[0]})" for msgid, places in used.items()
               if catalogue.get(msgid) is None or not catalogue.get(msgid).string.strip()]
    assert missing == []


def test_templates_have_no_text_outside_translation_calls():
    offenders = []
    for path in sorted((UI_DIR / "templates").rglob("*.html")):
        bare = JINJA.sub("", path.read_text("utf-8"))
        bare = re.sub(r"<script.*?</script>|<style.*?</style>", "", bare, flags=re.S)
        if CJK.search(bare):
            offenders.append(f"{path.name}: {CJK.search(bare).group()}")
        text_nodes = re.sub(r"<[^>]*>", " ", bare)
        words = re.findall(r"[A-Za-z]{2,}", text_nodes)
        if words:
            offenders.append(f"{path.name}: {words[:3]}")
    assert offenders == []


def test_stale_compiled_catalogue_is_rebuilt(tmp_path: Path):
    out = compile_catalogues(tmp_path / "mo")
    mo = out / "en" / "LC_MESSAGES" / "messages.mo"
    assert mo.stat().st_size > 1000
    mo.write_bytes(b"stale")
    import os
    os.utime(mo, (0, 0))
    compile_catalogues(tmp_path / "mo")
    assert mo.read_bytes() != b"stale"


def test_library_is_chinese_by_default_and_english_when_chosen(client):
    zh = client.get("/library")
    assert zh.status_code == 200
    assert '<html lang="zh-CN">' in zh.text and "资源库" in zh.text and "Library" not in zh.text
    switched = client.get("/lang/en?next=/library")
    assert switched.status_code == 302 and switched.headers["Location"] == "/library"
    en = client.get("/library")
    assert '<html lang="en">' in en.text and "Library" in en.text and "教材版本" not in en.text
    back = client.get("/lang/zh_CN?next=https://evil.example/")
    assert back.headers["Location"] == "/"
    assert '<html lang="zh-CN">' in client.get("/library").text


def test_curriculum_values_are_shown_in_english_for_english_users(client, appliance):
    from edge_agent.demo.run import load_sample_library

    load_sample_library(appliance)
    en = client.get("/library?lang=en&subject=语文")
    assert "Chinese · Grade 1" in en.text
    zh = client.get("/library?subject=语文")
    assert "语文 · 一年级" in zh.text
