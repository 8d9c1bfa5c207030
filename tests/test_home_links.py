"""The home page's role buttons lead somewhere: no 404 behind 我是学生 / 我是老师 / 浏览资源库 / 设备管理."""

from __future__ import annotations

import re


def test_every_button_on_the_home_page_opens_a_page(client):
    home = client.get("/")
    assert home.status_code == 200
    links = re.findall(r'<a class="role [^"]*" href="([^"]+)"', home.get_data(as_text=True))
    assert "/login" in links and len(links) == 4
    for href in links:
        r = client.get(href)
        assert r.status_code in (200, 302), (href, r.status_code)
        if r.status_code == 302:  # a page for the logged-in sends to its login page, which exists
            assert client.get(r.headers["Location"]).status_code == 200, (href, r.headers["Location"])
