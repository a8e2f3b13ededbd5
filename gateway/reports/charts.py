"""Charts as inline SVG, drawn on the server: no script, no web font, nothing fetched, and
readable when printed in black and white (every bar carries its number; the two fills of a
stacked bar differ in lightness, not only in hue).

Two shapes cover the report: `stacked_bars` (each row one bar split in parts, as shares of
the row) and `columns` (groups of vertical bars on one scale). Every chart is drawn at one
physical scale (`MM_PER_UNIT`), so its text prints at the same size whatever its width
(shrunk only to fit its column). The console (issue #13) can draw its figures with them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from gateway.reports.labels import number, share

FONT = "font-family=\"'DejaVu Sans', Arial, sans-serif\""
FONT_SIZE = 12
MM_PER_UNIT = 0.25
"""12 units of text print at 3 mm (about 8.5 pt)."""
CHAR_W = 6.8
"""About the width of one character at 12 units: enough to keep labels from overlapping."""
INK, GRID = "#222", "#bbb"
LEGEND_LINE = 17


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    fill: str
    text_fill: str = "#fff"
    """The colour of a number drawn inside a bar of this fill."""


DARK = Series("", "#1f4e79")
LIGHT = Series("", "#9dc3e6", INK)
ACCENT = Series("", "#c55a11")


def series(label: str, like: Series) -> Series:
    return Series(label, like.fill, like.text_fill)


def text_width(text: str) -> float:
    return CHAR_W * len(text)


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width * MM_PER_UNIT:.1f}mm" height="{height * MM_PER_UNIT:.1f}mm" '
        f'style="max-width:100%;height:auto" role="img" aria-label="{escape(title)}" '
        f'{FONT} font-size="{FONT_SIZE}"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _legend(items: Sequence[Series], x: float) -> tuple[list[str], float]:
    """One line per item from the top; (the elements, the height they take)."""
    out: list[str] = []
    for i, item in enumerate(items):
        y = 14 + i * LEGEND_LINE
        out.append(
            f'<rect x="{x:.1f}" y="{y - 10}" width="12" height="12" fill="{item.fill}" '
            f'stroke="{INK}" stroke-width="0.5"/>'
            f'<text x="{x + 17:.1f}" y="{y}" fill="{INK}">{escape(item.label)}</text>'
        )
    return out, 8 + LEGEND_LINE * len(items)


def _legend_width(items: Sequence[Series]) -> float:
    return max((17 + text_width(item.label) for item in items), default=0)


def stacked_bars(
    title: str, rows: Sequence[tuple[str, Sequence[int]]], parts: Sequence[Series]
) -> str:
    """One horizontal bar per row, 100 % wide, split into `parts` by share; each part shows
    its count and share (when there is room), the row its total."""
    label_w = 10 + max((text_width(label) for label, _ in rows), default=0)
    bar_w, row_h = 300.0, 30
    total_w = 10 + max((text_width(number(sum(v))) for _, v in rows), default=0)
    width = max(label_w + bar_w + total_w, _legend_width(parts) + 4)
    body, top = _legend(parts, 2)
    height = top + row_h * len(rows)
    for i, (label, values) in enumerate(rows):
        y = top + i * row_h
        total = sum(values)
        body.append(
            f'<text x="{label_w - 6:.1f}" y="{y + 16}" text-anchor="end" fill="{INK}">'
            f"{escape(label)}</text>"
        )
        if not total:
            body.append(
                f'<rect x="{label_w:.1f}" y="{y}" width="{bar_w}" height="22" fill="none" '
                f'stroke="{GRID}"/><text x="{label_w + 6:.1f}" y="{y + 16}" fill="{INK}">0</text>'
            )
            continue
        x = label_w
        for value, part in zip(values, parts, strict=True):
            w = bar_w * value / total
            if w > 0:
                body.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="22" fill="{part.fill}">'
                    f"<title>{escape(part.label)}: {number(value)}</title></rect>"
                )
            caption = f"{number(value)} ({share(100 * value / total)})"
            if w >= text_width(caption) + 8:
                body.append(
                    f'<text x="{x + 4:.1f}" y="{y + 16}" fill="{part.text_fill}">'
                    f"{escape(caption)}</text>"
                )
            x += w
        body.append(
            f'<text x="{label_w + bar_w + 6:.1f}" y="{y + 16}" fill="{INK}">{number(total)}</text>'
        )
    return _svg(width, height, title, body)


def columns(title: str, groups: Sequence[tuple[str, Sequence[int]]], bars: Sequence[Series]) -> str:
    """Groups of vertical bars on one scale (e.g. sent and received per level), each bar
    with its number on top."""
    peak = max((v for _, values in groups for v in values), default=0) or 1
    value_w = text_width(number(peak)) + 6
    bar_w = max(26.0, value_w)
    longest = max((text_width(label) for label, _ in groups), default=0)
    group_w = max(bar_w * len(bars) + 16, longest + 12)
    legend, top = _legend(bars, 2)
    top += 14  # room for the tallest bar's number
    plot_h, left = 110, 4
    width = max(left + group_w * len(groups), _legend_width(bars) + 4)
    height = top + plot_h + 22
    base = top + plot_h
    body = [*legend, f'<line x1="0" y1="{base}" x2="{width:.1f}" y2="{base}" stroke="{INK}"/>']
    for g, (label, values) in enumerate(groups):
        gx = left + g * group_w + (group_w - bar_w * len(bars)) / 2
        for b, (value, bar) in enumerate(zip(values, bars, strict=True)):
            h = plot_h * value / peak
            x = gx + b * bar_w
            body.append(
                f'<rect x="{x + 2:.1f}" y="{base - h:.1f}" width="{bar_w - 4:.1f}" '
                f'height="{h:.1f}" fill="{bar.fill}"><title>{escape(bar.label)}, '
                f"{escape(label)}: {number(value)}</title></rect>"
                f'<text x="{x + bar_w / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" '
                f'fill="{INK}">{number(value)}</text>'
            )
        body.append(
            f'<text x="{left + g * group_w + group_w / 2:.1f}" y="{base + 16}" '
            f'text-anchor="middle" fill="{INK}">{escape(label)}</text>'
        )
    return _svg(width, height, title, body)
