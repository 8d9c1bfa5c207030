"""A realistic sample library made by code: Chinese titles, curriculum metadata,
files a browser really opens (HTML lessons, SVG pictures, WAV audio, PDF
documents, exercise sets). Nothing is downloaded; used by the demo and tests.
"""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from dataclasses import dataclass

from edge_agent.library.catalogue import Resource

# (subject, grade, edition, chapter, title, kind)
SAMPLES = [
    ("语文", "一年级", "统编版", "汉语拼音 第一单元", "汉语拼音 第一课 a o e", "html"),
    ("语文", "一年级", "统编版", "汉语拼音 第一单元", "汉语拼音 第二课 i u ü", "html"),
    ("语文", "一年级", "统编版", "汉语拼音 第一单元", "拼音儿歌 跟读音频", "audio"),
    ("语文", "一年级", "统编版", "识字 第一单元", "天地人 识字卡片", "image"),
    ("语文", "一年级", "统编版", "识字 第一单元", "识字 第一单元 练习", "exercise"),
    ("语文", "二年级", "统编版", "课文 第一单元", "小蝌蚪找妈妈 课文朗读", "audio"),
    ("语文", "二年级", "统编版", "课文 第一单元", "小蝌蚪找妈妈 教学设计", "document"),
    ("语文", "三年级", "统编版", "古诗三首", "山行 古诗插图", "image"),
    ("数学", "一年级", "人教版", "第一单元 准备课", "数一数 1-10", "html"),
    ("数学", "一年级", "人教版", "第三单元 1-5的认识和加减法", "5以内的加法 练习", "exercise"),
    ("数学", "二年级", "人教版", "第二单元 100以内的加法和减法", "两位数加两位数 微课", "html"),
    ("数学", "三年级", "北师大版", "第一单元 混合运算", "混合运算 练习", "exercise"),
    ("数学", "四年级", "人教版", "第三单元 角的度量", "认识角 图示", "image"),
    ("数学", "五年级", "人教版", "第四单元 分数的意义和性质", "分数的意义 教案", "document"),
    ("英语", "三年级", "人教版", "Unit 1 Hello!", "Unit 1 Hello! 听力", "audio"),
    ("英语", "三年级", "人教版", "Unit 1 Hello!", "Unit 1 单词练习", "exercise"),
    ("英语", "四年级", "外研版", "Module 1", "Module 1 对话动画", "html"),
    ("科学", "三年级", "教科版", "第一单元 植物", "植物的一生 观察记录", "document"),
    ("科学", "三年级", "教科版", "第一单元 植物", "植物的结构 图解", "image"),
    ("科学", "四年级", "教科版", "第二单元 声音", "声音的高低 实验音频", "audio"),
    ("道德与法治", "一年级", "统编版", "第一单元 我是小学生啦", "开开心心上学去", "html"),
    ("音乐", "二年级", "人音版", "第一单元", "小红帽 歌曲伴奏", "audio"),
    ("美术", "一年级", "人美版", "第一课", "让色彩动起来 示范", "image"),
    ("数学", "七年级", "人教版", "第一章 有理数", "有理数 概念讲解", "html"),
    ("语文", "七年级", "统编版", "第一单元", "春 朱自清 朗读", "audio"),
]

SUBJECT_EN = {"语文": "Chinese", "数学": "Mathematics", "英语": "English", "科学": "Science",
              "道德与法治": "Morality and Law", "音乐": "Music", "美术": "Art"}
GRADES = ["一年级", "二年级", "三年级", "四年级", "五年级", "六年级", "七年级", "八年级", "九年级"]


def grade_en(grade: str) -> str:
    return str(GRADES.index(grade) + 1) if grade in GRADES else "-"


PALETTE = ["#e4572e", "#29335c", "#f3a712", "#669bbc", "#a8c686", "#7b2d26"]


@dataclass
class SampleFile:
    name: str
    data: bytes
    mime: str


def html_lesson(title: str, subject: str, grade: str) -> list[SampleFile]:
    svg = svg_picture(title, 0)
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>body{{font-family:"WenQuanYi Micro Hei",sans-serif;margin:2rem;line-height:1.8;font-size:1.3rem}}
h1{{color:#29335c}} .card{{background:#f6f1e7;border-radius:12px;padding:1rem;margin:1rem 0}}
button{{font-size:1.2rem;min-height:44px;padding:.4rem 1rem}}</style></head>
<body><h1>{title}</h1><p>{grade} · {subject}</p>
<img src="picture.svg" alt="{title} 插图" width="320">
<div class="card"><p>学习目标：认真观察图片，跟着老师一起读一读，说一说。</p></div>
<div class="card"><p>想一想：你在生活中见过这些吗？</p>
<button onclick="document.getElementById('ok').textContent='真棒！'">我学会了</button> <span id="ok"></span></div>
</body></html>"""
    return [SampleFile("index.html", page.encode("utf-8"), "text/html"), SampleFile("picture.svg", svg, "image/svg+xml")]


def svg_picture(title: str, seed: int) -> bytes:
    colour = PALETTE[seed % len(PALETTE)]
    shapes = "".join(
        f'<circle cx="{60 + 70 * i}" cy="{120 + 30 * math.sin(i + seed)}" r="{22 + 6 * (i % 3)}" fill="{PALETTE[(seed + i) % len(PALETTE)]}"/>'
        for i in range(6))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="480" height="270" viewBox="0 0 480 270">'
            f'<rect width="480" height="270" fill="#fdf6e3"/><rect x="0" y="0" width="480" height="48" fill="{colour}"/>'
            f'<text x="240" y="32" font-size="22" text-anchor="middle" fill="#fff" '
            f'font-family="WenQuanYi Micro Hei, sans-serif">{title}</text>{shapes}</svg>').encode("utf-8")


def wav_melody(seed: int, seconds: float = 6.0, rate: int = 16000) -> bytes:
    """A short, real, playable melody (mono 16-bit PCM)."""
    notes = [262, 294, 330, 349, 392, 440, 494, 523]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = bytearray()
        per_note = int(rate * 0.5)
        for n in range(int(seconds / 0.5)):
            freq = notes[(seed + n * 3) % len(notes)]
            for i in range(per_note):
                env = min(1.0, i / 400, (per_note - i) / 400)
                frames += struct.pack("<h", int(9000 * env * math.sin(2 * math.pi * freq * i / rate)))
        w.writeframes(bytes(frames))
    return buf.getvalue()


def pdf_document(title_ascii: str, lines: list[str]) -> bytes:
    """A minimal valid one-page PDF (Latin text: built-in fonts have no Chinese)."""
    text = "BT /F1 20 Tf 60 780 Td (" + _pdf_escape(title_ascii) + ") Tj ET\n"
    for i, line in enumerate(lines):
        text += f"BT /F1 12 Tf 60 {740 - 20 * i} Td (" + _pdf_escape(line) + ") Tj ET\n"
    objs = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(text.encode())} >>\nstream\n{text}endstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def _pdf_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def exercise_set(title: str, subject: str, seed: int) -> bytes:
    """An exercise set in the appliance's JSON format (see README, 练习格式)."""
    a, b = 2 + seed % 4, 1 + seed % 3
    questions = [
        {"id": "q1", "type": "single", "prompt": f"{a} + {b} = ?", "options": [str(a + b - 1), str(a + b), str(a + b + 1)],
         "answer": [1]},
        {"id": "q2", "type": "truefalse", "prompt": "“山”字一共有三笔。", "answer": True},
        {"id": "q3", "type": "multiple", "prompt": "下面哪些是水果？", "options": ["苹果", "白菜", "香蕉", "萝卜"],
         "answer": [0, 2]},
        {"id": "q4", "type": "fill", "prompt": "一年有（ ）个月。", "answer": ["12", "十二"]},
    ]
    return json.dumps({"title": title, "subject": subject, "attempts": 3, "questions": questions},
                      ensure_ascii=False, indent=1).encode("utf-8")


def sample_resources(count: int | None = None) -> list[tuple[Resource, list[SampleFile]]]:
    """The sample library: resources with their files' bytes. ``count`` repeats the
    list with numbered copies (for benchmarks with thousands of resources)."""
    out = []
    total = count if count is not None else len(SAMPLES)
    for n in range(total):
        subject, grade, edition, chapter, title, kind = SAMPLES[n % len(SAMPLES)]
        if n >= len(SAMPLES):
            title = f"{title}（{n // len(SAMPLES) + 1}）"
        stage = "初中" if grade in ("七年级", "八年级", "九年级") else "小学"
        files, extra = _files_for(kind, title, subject, grade, n)
        resource = Resource(id=f"sample-{n:05d}", title=title, kind=kind, stage=stage, grade=grade, subject=subject,
                            edition=edition, chapter=chapter, description=f"{edition}{subject}{grade}：{chapter}",
                            source=["national", "provincial", "county"][n % 3], licence="CC BY-NC 4.0", **extra)
        out.append((resource, files))
    return out


def _files_for(kind: str, title: str, subject: str, grade: str, n: int) -> tuple[list[SampleFile], dict]:
    if kind == "html":
        return html_lesson(title, subject, grade), {}
    if kind == "image":
        return [SampleFile("picture.svg", svg_picture(title, n), "image/svg+xml")], {}
    if kind == "audio":
        return [SampleFile("audio.wav", wav_melody(n), "audio/wav")], {"duration_s": 6}
    if kind == "document":
        return [SampleFile("document.pdf", pdf_document(f"Lesson plan {n}", [f"Subject: {SUBJECT_EN.get(subject, 'General')}, grade: {grade_en(grade)}", "Goals, steps, homework."]),
                           "application/pdf")], {"pages": 1}
    if kind == "exercise":
        return [SampleFile("exercise.json", exercise_set(title, subject, n), "application/json")], {}
    raise ValueError(kind)
