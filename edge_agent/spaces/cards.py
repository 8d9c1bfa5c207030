"""Printable QR login cards: one per student, a URL carrying a random card token.

The token travels in the URL *fragment* (``/login/card#t=...``) so it is never
sent in a request line or written to a server log; the login page posts it to
``POST /api/v1/login/card``. Printing a class's cards again issues new tokens,
which revokes the old cards (a lost card is fixed by reprinting).
"""

from __future__ import annotations

import html

import segno

from edge_agent.spaces.people import Person


def card_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/login/card#t={token}"


def card_svg(url: str) -> str:
    return segno.make(url, error="m").svg_inline(scale=4)


def cards_json(base_url: str, students: list[Person], tokens: dict[int, str]) -> list[dict]:
    return [{"person_id": s.id, "name": s.name, "url": card_url(base_url, tokens[s.id]), "svg": card_svg(card_url(base_url, tokens[s.id]))}
            for s in students]


def cards_html(class_name: str, cards: list[dict]) -> str:
    """A plain printable A4 sheet (the pages issue makes it pretty)."""
    cells = "".join(f'<div class="card">{c["svg"]}<p>{html.escape(c["name"])}</p></div>' for c in cards)
    return ("<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>登录卡 " + html.escape(class_name) + "</title>"
            "<style>body{font-family:sans-serif}.card{display:inline-block;width:45mm;margin:3mm;text-align:center;"
            "border:1px dashed #999;padding:2mm}.card p{margin:1mm;font-size:14pt}</style>"
            f"<h1>{html.escape(class_name)} 登录卡 Login cards</h1>{cells}</html>")
