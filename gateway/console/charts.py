"""Charts drawn on the server as inline SVG: no script, nothing fetched, the same in print.

Each chart is a `<figure>`-ready `<svg>` with a `viewBox` (it scales with the page), a
`<title>` and an `aria-label`, numbers written beside the bars (a printed page in black
and white still reads), and colours as presentation attributes (no inline style, which the
console's Content-Security-Policy forbids).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 720
HALF = 480
"""Charts that sit in half a page's width: a narrower canvas keeps their text legible."""
FONT = 'font-family="sans-serif" font-size="12"'
INK = "#222"
GRID = "#ccc"
PALETTE = ("#1f5f9e", "#e08a1e", "#3a8f3a", "#b03030", "#7b5aa6", "#888888")
COVERAGE = ("#3a8f3a", "#1f5f9e", "#e08a1e", "#b9b9b9")
"""Status feedback buckets, best first: green, blue, orange, grey for none."""
ALERT = "#b03030"


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    note: str = ""
    """Written after the value (e.g. "3 stuck")."""
    alert: bool = False
    shown: str = ""
    """The value as written (e.g. an age, "2d 03h"); the number itself when empty."""


def _svg(height: int, label: str, body: list[str], width: int = WIDTH) -> Markup:
    text = escape(label)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{text}" class="chart" {FONT}>'
        f"<title>{text}</title>{''.join(body)}</svg>"
    )


def _nice_max(value: float) -> float:
    """The axis end: 1, 2 or 5 times a power of ten, at least `value` (4 for small counts,
    so that the four gridlines fall on whole numbers)."""
    if value <= 4:
        return 4.0
    power = 10.0 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 5, 10) if step * power >= value))


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def grouped_columns(
    label: str, groups: Sequence[tuple[str, Sequence[float]]], series: Sequence[str]
) -> Markup:
    """Columns side by side per group (a day), one colour per series, a legend on top."""
    height, top, bottom, left = 260, 34, 40, 48
    plot_w, plot_h = WIDTH - left - 10, height - top - bottom
    peak = _nice_max(max((v for _, values in groups for v in values), default=0))
    body: list[str] = []
    for i, name in enumerate(series):
        lx = left + i * 200
        body.append(
            f'<rect x="{lx}" y="8" width="12" height="12" fill="{PALETTE[i]}"/>'
            f'<text x="{lx + 18}" y="18" fill="{INK}">{escape(name)}</text>'
        )
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot_h - plot_h * tick / 4
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"{_number(value)}</text>"
        )
    slot = plot_w / max(len(groups), 1)
    bar_w = max(2.0, (slot - 6) / max(len(series), 1))
    for g, (name, values) in enumerate(groups):
        x0 = left + g * slot + 3
        for i, value in enumerate(values):
            h = plot_h * value / peak
            x, y = x0 + i * bar_w, top + plot_h - h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[i]}"><title>{escape(name)} {escape(series[i])}: '
                f"{_number(value)}</title></rect>"
            )
        body.append(
            f'<text x="{x0 + slot / 2 - 3:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle" fill="{INK}" font-size="10">{escape(name)}</text>'
        )
    return _svg(height, label, body)


def horizontal_bars(label: str, bars: Sequence[Bar], width: int = HALF) -> Markup:
    """One labelled bar per row, its value (and note) written after it."""
    row, left, right = 24, 130, 120
    height = max(row * len(bars), row) + 10
    peak = max((b.value for b in bars), default=0) or 1.0
    span = width - left - right
    body: list[str] = []
    for i, bar in enumerate(bars):
        y = 5 + i * row
        w = max(1.0, span * bar.value / peak) if bar.value > 0 else 0.0
        colour = ALERT if bar.alert else PALETTE[0]
        text = (bar.shown or _number(bar.value)) + (f" · {bar.note}" if bar.note else "")
        body.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" fill="{INK}">'
            f"{escape(bar.label)}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{colour}"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" fill="{ALERT if bar.alert else INK}">'
            f"{escape(text)}</text>"
        )
    return _svg(height, label, body, width)


def shares(
    label: str,
    parts: Sequence[tuple[str, int]],
    colours: Sequence[str] = PALETTE,
    width: int = HALF,
) -> Markup:
    """One bar of 100 % split into parts, with a legend giving each count and share."""
    height, left, bar_h = 120, 10, 32
    total = sum(n for _, n in parts)
    span = width - 2 * left
    body: list[str] = []
    x = float(left)
    for i, (_, n) in enumerate(parts):
        w = span * n / total if total else 0.0
        if w > 0:
            body.append(
                f'<rect x="{x:.1f}" y="10" width="{w:.1f}" height="{bar_h}" '
                f'fill="{colours[i % len(colours)]}"/>'
            )
        x += w
    if not total:
        body.append(
            f'<rect x="{left}" y="10" width="{span}" height="{bar_h}" fill="none" stroke="{GRID}"/>'
        )
    for i, (name, n) in enumerate(parts):
        lx, ly = left + (i % 2) * (width // 2), 64 + (i // 2) * 22
        share = f"{100 * n / total:.0f} %" if total else "–"
        body.append(
            f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" '
            f'fill="{colours[i % len(colours)]}"/>'
            f'<text x="{lx + 18}" y="{ly}" fill="{INK}">{escape(name)}: {n} ({share})</text>'
        )
    return _svg(height, label, body, width)
