"""Report charts as SVG drawn on the hub (pygal), readable without JavaScript.

pygal's default adds a tooltip script from a CDN; ``js=[]`` leaves it out, and the
small inline configuration script pygal still writes is removed from the tree, so a
chart is one self-contained SVG without any script (inline in the page, where the
console's Content-Security-Policy allows no inline script, or as ``image/svg+xml``).
A suppressed cell ("<5") is drawn as a gap, never as a number; a table with no
rows draws an empty chart with "no data", not an error.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from xml.etree import ElementTree

from hub_sync.hub.report_tables import Table

STYLE = {"background": "white", "plot_background": "white", "foreground": "#333", "foreground_strong": "#111",
         "foreground_subtle": "#999", "colors": ("#2a7ab0", "#d9822b", "#3a9a5b", "#9a3a8a"),
         "font_family": "sans-serif", "title_font_size": 16, "label_font_size": 12, "legend_font_size": 12}
CHART_SIZE = (720, 320)
CHART_CACHE = 256
ElementTree.register_namespace("", "http://www.w3.org/2000/svg")  # serialise as <svg>, not <ns0:svg>
ElementTree.register_namespace("xlink", "http://www.w3.org/1999/xlink")


@lru_cache(maxsize=1)
def _pygal():
    """pygal, imported at the first chart: it costs every hub process (each command, each
    server start) ~30 ms that only a report page needs."""
    import pygal
    from pygal.style import Style

    # pygal appends a legacy ``sys.meta_path`` finder for its map plugins (unused here); every import
    # that reaches it (an optional module that is absent) then raises ImportWarning, an error under pytest
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]
    return pygal, Style(**STYLE)


def _config(title: str) -> dict:
    return {"title": title, "style": _pygal()[1], "js": [], "width": CHART_SIZE[0], "height": CHART_SIZE[1],
            "disable_xml_declaration": True, "no_data_text": "无数据 no data", "show_legend": True,
            "legend_at_bottom": True, "x_label_rotation": 30, "print_values": False}


def _number(value) -> float | None:
    return value if isinstance(value, (int, float)) else None  # "<5" and text become gaps


def bars(table: Table, keys: tuple[str, ...] = ("events", "learners"), limit: int = 15) -> str:
    """A bar chart of the first column's values (subject, grade, kind, resource) by ``keys``."""
    return _draw("bar", *_frozen(table), keys, limit)


def trend(table: Table, keys: tuple[str, ...] = ("learners", "teachers")) -> str:
    """A line chart of the weekly table."""
    return _draw("line", *_frozen(table), keys, None)


def _frozen(table: Table) -> tuple:
    """(title, columns, rows) as tuples: hashable, the key of the chart cache."""
    return (f"{table.zh} {table.en}", tuple((c.key, f"{c.zh} {c.en}") for c in table.columns),
            tuple(tuple(r) for r in table.rows))


# pygal takes ~80 ms a chart: the same numbers (a page reloaded, another reader of the same
# period and scope) are drawn once per process
@lru_cache(maxsize=CHART_CACHE)
def _draw(kind: str, title: str, columns: tuple, rows: tuple, keys: tuple[str, ...], limit: int | None) -> str:
    pygal = _pygal()[0]
    chart = (pygal.Bar if kind == "bar" else pygal.Line)(**_config(title))
    rows = rows[:limit] if limit else rows
    chart.x_labels = [str(r[0])[:20] for r in rows]
    names = [c[0] for c in columns]
    for key in keys:
        i = names.index(key)
        chart.add(columns[i][1], [_number(r[i]) for r in rows])
    return _svg(chart)


def _svg(chart) -> str:
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return ElementTree.tostring(tree, encoding="unicode")
