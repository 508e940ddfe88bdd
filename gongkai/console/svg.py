"""Horizontal bar charts as inline SVG, drawn on the server.

No chart library and no script: the report must print, work offline and load nothing from a
CDN. Each chart carries a title and a text description for screen readers, and the page shows
the same numbers in a table beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

ROW = 28
BAR = 18
LABEL_WIDTH = 210
BAR_WIDTH = 380
VALUE_WIDTH = 90
LABEL_MAX_CHARS = 13  # CJK characters at 14px fit the label column


def _short(label: str) -> str:
    return label if len(label) <= LABEL_MAX_CHARS else label[: LABEL_MAX_CHARS - 1] + "…"


def bar_chart(
    rows: Sequence[tuple[str, float]],
    *,
    title: str,
    chart_id: str,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    max_value: float | None = None,
) -> Markup:
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    height = max(1, len(rows)) * ROW + 8
    top = max([max_value or 0, *(v for _, v in rows)]) or 1
    desc = "；".join(f"{label}：{fmt(value)}" for label, value in rows) or "没有数据"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">{escape(desc)}</desc>',
    ]
    if not rows:
        out.append(f'<text x="8" y="{ROW - 10}" fill="#444" font-size="14">没有数据</text>')
    for i, (label, value) in enumerate(rows):
        y = 4 + i * ROW
        length = round(BAR_WIDTH * (value / top)) if value > 0 else 0
        out.append(
            f"<g><title>{escape(label)}：{escape(fmt(value))}</title>"
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR - 4}" text-anchor="end" font-size="14" '
            f'fill="#1a1a1a">{escape(_short(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{BAR_WIDTH}" height="{BAR}" fill="#eef2f7"/>'
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR}" '
            f'fill="#1f5fa8"/>'
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{y + BAR - 4}" font-size="14" '
            f'fill="#1a1a1a">{escape(fmt(value))}</text></g>'
        )
    out.append("</svg>")
    return Markup("".join(out))
