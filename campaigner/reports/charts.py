"""Small inline SVG charts, drawn in Python so the HTML report needs no script or network.

Labels go through escaping; every text element carries `unicode-bidi: plaintext` (via the
page's CSS) so a Persian rule name reads right to left inside a left-to-right chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from markupsafe import Markup

PALETTE = ("#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#dc2626", "#ca8a04", "#4b5563")
WIDTH = 760
LABEL_WIDTH = 170


@dataclass(frozen=True)
class Bar:
    series: str
    value: float
    text: str


@dataclass(frozen=True)
class BarGroup:
    label: str
    bars: Sequence[Bar]


def _svg(height: int, title: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", css: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{css}">{escape(text)}</text>'
    )


def _legend(series: Sequence[str], y: float) -> list[str]:
    parts, x = [], float(LABEL_WIDTH)
    for index, name in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{color}"/>')
        parts.append(_text(x + 16, y, name, css="legend"))
        x += 28 + 7.5 * len(name)
    return parts


def no_data(title: str) -> Markup:
    return _svg(60, title, [_text(WIDTH / 2, 35, "No data in this period", anchor="middle")])


def bar_chart(title: str, groups: Sequence[BarGroup], series: Sequence[str]) -> Markup:
    """Horizontal bars, one group per rule and one bar per series, scaled to the largest."""
    if not groups:
        return no_data(title)
    bar_height, gap = 16, 14
    peak = max((bar.value for group in groups for bar in group.bars), default=0) or 1
    span = WIDTH - LABEL_WIDTH - 150
    body: list[str] = _legend(series, 20) if len(series) > 1 else []
    y = 34.0 if len(series) > 1 else 10.0
    for group in groups:
        group_height = bar_height * len(group.bars)
        body.append(_text(LABEL_WIDTH - 10, y + group_height / 2 + 5, group.label, anchor="end"))
        for bar in group.bars:
            color = PALETTE[series.index(bar.series) % len(PALETTE)]
            width = max(span * bar.value / peak, 0)
            body.append(
                f'<rect class="bar" x="{LABEL_WIDTH}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{bar_height - 3}" fill="{color}"><title>{escape(bar.series)}: '
                f"{escape(bar.text)}</title></rect>"
            )
            body.append(_text(LABEL_WIDTH + width + 6, y + bar_height - 5, bar.text, css="value"))
            y += bar_height
        y += gap
    return _svg(int(y + 6), title, body)


def line_chart(title: str, days: Sequence[date], lines: dict[str, Sequence[int]]) -> Markup:
    """One line per rule across consecutive days; a single day is drawn as dots."""
    if not days:
        return no_data(title)
    height, top, bottom, left, right = 280, 34, 40, 50, 20
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = max((value for values in lines.values() for value in values), default=0) or 1
    step = plot_w / max(len(days) - 1, 1)
    body = _legend(list(lines), 20)
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        body.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        body.append(_text(left - 6, y + 4, f"{peak * fraction:.0f}", anchor="end", css="axis"))
    ticks = {0: "start", len(days) // 2: "middle", len(days) - 1: "end"}
    for index, anchor in sorted(ticks.items()):
        x = left + index * step
        body.append(_text(x, height - 14, days[index].isoformat(), anchor=anchor, css="axis"))
    for number, values in enumerate(lines.values()):
        color = PALETTE[number % len(PALETTE)]
        points = [
            (left + index * step, top + plot_h * (1 - value / peak))
            for index, value in enumerate(values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(
            f'<polyline class="series" points="{path}" fill="none" stroke="{color}" '
            'stroke-width="2"/>'
        )
        if len(points) <= 31:
            body.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points
            )
    return _svg(height, title, body)


def score_chart(title: str, labels: Sequence[str], scores: Sequence[float | None]) -> Markup:
    """Columns from -100 to +100 around a zero line: NPS per week."""
    if not labels:
        return no_data(title)
    height, top, left = 240, 20, 50
    plot_h = height - top - 40
    zero = top + plot_h / 2
    slot = (WIDTH - left - 20) / len(labels)
    body = [f'<line x1="{left}" x2="{WIDTH - 20}" y1="{zero:.1f}" y2="{zero:.1f}" class="grid"/>']
    for value in (100, 0, -100):
        y = zero - plot_h / 2 * value / 100
        body.append(
            _text(left - 6, y + 4, f"{value:+d}" if value else "0", anchor="end", css="axis")
        )
    for index, (label, score) in enumerate(zip(labels, scores, strict=True)):
        x = left + index * slot + slot * 0.2
        if score is not None:
            bar = plot_h / 2 * abs(score) / 100
            y = zero - bar if score >= 0 else zero
            color = PALETTE[1] if score >= 0 else PALETTE[5]
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.6:.1f}" '
                f'height="{bar:.1f}" fill="{color}"/>'
            )
            body.append(
                _text(
                    x + slot * 0.3,
                    (y - 4) if score >= 0 else (y + bar + 14),
                    f"{score:+.0f}",
                    anchor="middle",
                    css="value",
                )
            )
        body.append(_text(x + slot * 0.3, height - 14, label, anchor="middle", css="axis"))
    return _svg(height, title, body)
