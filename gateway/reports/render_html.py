"""The report as one printable HTML page (A4: the figures and their charts on the first
sheet, the per-agency table on the second). Charts are inline SVG (`gateway.reports.charts`);
no script, no stylesheet or font fetched from anywhere. Vietnamese first, English in
parentheses.

A province has hundreds of agencies: the printed table shows the `agency_rows` busiest
(sent + received), the rest summed in one row, and says where the whole table is (CSV,
XLSX); `agency_rows=0` prints every agency."""

from __future__ import annotations

from html import escape

from gateway.reports import charts
from gateway.reports.labels import en, level_label, number, share, vi
from gateway.reports.quarterly import AgencyTraffic, QuarterlyReport, Split, percent

DEFAULT_AGENCY_ROWS = 30

STYLE = """
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; }
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 9pt; color: #222;
  margin: 0 auto; max-width: 186mm; }
h1 { font-size: 13pt; margin: 0; text-transform: uppercase; }
.subtitle { font-size: 10pt; margin: 0 0 2mm; }
h2 { font-size: 10.5pt; margin: 3.5mm 0 1.5mm; border-bottom: 1px solid #888; }
.en { color: #555; font-weight: normal; }
.meta { display: flex; flex-wrap: wrap; gap: 1mm 7mm; margin: 0 0 1mm; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #999; padding: 0.7mm 1.4mm; vertical-align: top; }
th { background: #eee; text-align: left; font-size: 8pt; }
td.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; background: #f4f4f4; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 5mm; align-items: start; }
section { break-inside: avoid; }
figure { margin: 1.5mm 0 0; }
.agencies { break-before: page; }
.agencies table { font-size: 7.5pt; }
.agencies td.code { white-space: nowrap; }
.note { font-size: 8pt; color: #555; margin: 0 0 1mm; }
"""


def _both(key: str, br: bool = False) -> str:
    """`Văn bản gửi đi <span class=en>(Documents sent)</span>`, the English on its own line
    in table headers."""
    return f"{escape(vi(key))}{'<br>' if br else ' '}<span class=en>({escape(en(key))})</span>"


def _legend(key: str) -> str:
    return f"{vi(key)} ({en(key)})"


def render_html(report: QuarterlyReport, agency_rows: int = DEFAULT_AGENCY_ROWS) -> str:
    title_vi, title_en = report.period.title()
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="vi"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(vi('title'))} — {escape(title_vi)}</title>",
            f"<style>{STYLE}</style></head><body>",
            f"<h1>{escape(vi('title'))}</h1>",
            f'<p class="subtitle en">({escape(en("title"))})</p>',
            '<div class="meta">'
            f"<div><b>{_both('period')}:</b> {escape(title_vi)} "
            f"<span class=en>({escape(title_en)})</span></div>"
            f"<div><b>{_both('node')}:</b> {escape(report.node_code)}</div>"
            f"<div><b>{_both('timezone')}:</b> {escape(report.timezone)}</div>"
            f"<div><b>{_both('generated')}:</b> "
            f"{report.generated_at.isoformat(timespec='seconds')}</div></div>",
            _summary(report),
            _levels(report),
            _routes(report),
            _feedback(report),
            _agencies(report, agency_rows),
            "</body></html>",
        ]
    )


def _split_cells(split: Split) -> str:
    return (
        f"<td class=n>{number(split.total)}</td>"
        f"<td class=n>{number(split.electronic_only)}</td>"
        f"<td class=n>{share(percent(split.electronic_only, split.total))}</td>"
        f"<td class=n>{number(split.with_paper)}</td>"
        f"<td class=n>{share(percent(split.with_paper, split.total))}</td>"
    )


def _summary(report: QuarterlyReport) -> str:
    sent, received = report.sent, report.received
    chart = charts.stacked_bars(
        _legend("summary"),
        [
            (vi("sent_short"), [sent.electronic_only, sent.with_paper]),
            (vi("received_short"), [received.electronic_only, received.with_paper]),
        ],
        [
            charts.series(_legend("electronic_only"), charts.DARK),
            charts.series(_legend("with_paper"), charts.LIGHT),
        ],
    )
    return (
        f"<section><h2>1. {_both('summary')}</h2><div class=pair><table><tr><th></th>"
        f"<th>{_both('total', True)}</th><th>{_both('electronic_only', True)}</th>"
        f"<th>{_both('share', True)}</th><th>{_both('with_paper', True)}</th>"
        f"<th>{_both('share', True)}</th></tr>"
        f"<tr><td>{_both('sent_short', True)}</td>{_split_cells(sent)}</tr>"
        f"<tr><td>{_both('received_short', True)}</td>{_split_cells(received)}</tr></table>"
        f"<figure>{chart}</figure></div></section>"
    )


def _levels(report: QuarterlyReport) -> str:
    rows = report.by_level
    body = "".join(
        f"<tr><td>{escape(level_label(r.level)[0])}</td>"
        f"<td class=n>{number(r.sent.total)}</td><td class=n>{number(r.sent.with_paper)}</td>"
        f"<td class=n>{number(r.received.total)}</td>"
        f"<td class=n>{number(r.received.with_paper)}</td></tr>"
        for r in rows
    )
    chart = charts.columns(
        _legend("by_level"),
        [(f"{vi('level')} {r.level}", [r.sent.total, r.received.total]) for r in rows],
        [
            charts.series(_legend("sent"), charts.DARK),
            charts.series(_legend("received"), charts.LIGHT),
        ],
    )
    return (
        f"<section><h2>2. {_both('by_level')}</h2><div class=pair><table><tr>"
        f"<th>{_both('level', True)}</th><th>{_both('sent_short', True)}</th>"
        f"<th>{_both('paper_short', True)}</th><th>{_both('received_short', True)}</th>"
        f"<th>{_both('paper_short', True)}</th></tr>{body}</table>"
        f"<figure>{chart}</figure></div></section>"
    )


def _routes(report: QuarterlyReport) -> str:
    sent, received = report.sent.total, report.received.total
    peers_sent, peers_received = report.sent_via_peers, report.received_via_peers
    chart = charts.stacked_bars(
        _legend("routes"),
        [
            (vi("sent_short"), [sent - peers_sent, peers_sent]),
            (vi("received_short"), [received - peers_received, peers_received]),
        ],
        [
            charts.series(_legend("inside"), charts.DARK),
            charts.series(_legend("via_peers"), charts.ACCENT),
        ],
    )
    return (
        f"<section><h2>3. {_both('routes')}</h2><div class=pair><table><tr><th></th>"
        f"<th>{_both('inside', True)}</th><th>{_both('via_peers', True)}</th>"
        f"<th>{_both('share', True)}</th></tr>"
        f"<tr><td>{_both('sent_short', True)}</td><td class=n>{number(sent - peers_sent)}</td>"
        f"<td class=n>{number(peers_sent)}</td>"
        f"<td class=n>{share(percent(peers_sent, sent))}</td></tr>"
        f"<tr><td>{_both('received_short', True)}</td>"
        f"<td class=n>{number(received - peers_received)}</td>"
        f"<td class=n>{number(peers_received)}</td>"
        f"<td class=n>{share(percent(peers_received, received))}</td></tr></table>"
        f"<figure>{chart}</figure></div></section>"
    )


def _feedback(report: QuarterlyReport) -> str:
    f = report.feedback
    buckets = [
        ("five_or_more", "≥ 5", f.five_or_more),
        ("three_to_four", "3–4", f.three_to_four),
        ("fewer_than_three", "< 3", f.fewer_than_three),
    ]
    chart = charts.columns(
        _legend("feedback"),
        [(short, [n]) for _, short, n in buckets],
        [charts.series(_legend("agencies_count"), charts.DARK)],
    )
    rows = "".join(
        f"<tr><td>{_both(key)}</td><td class=n>{number(n)}</td>"
        f"<td class=n>{share(percent(n, f.agencies))}</td></tr>"
        for key, _, n in buckets
    )
    return (
        f"<section><h2>4. {_both('feedback')}</h2><div class=pair><table>"
        f"<tr><th></th><th>{_both('agencies_count', True)}</th>"
        f"<th>{_both('share', True)}</th></tr>"
        f"<tr class=total><td>{_both('feedback_agencies')}</td>"
        f"<td class=n>{number(f.agencies)}</td>"
        f"<td class=n>{share(100.0 if f.agencies else 0.0)}</td></tr>{rows}</table>"
        f"<figure>{chart}</figure></div></section>"
    )


def _agency_row(a: AgencyTraffic) -> str:
    name = escape(a.name) if a.name else f"<i>{escape(vi('unnamed'))}</i>"
    return (
        f"<tr><td class=code>{escape(a.code)}</td><td>{name}</td>"
        f"<td class=n>{number(a.sent)}</td><td class=n>{number(a.sent_with_paper)}</td>"
        f"<td class=n>{number(a.received)}</td><td class=n>{number(a.received_with_paper)}</td>"
        f"<td class=n>{len(a.feedback_codes)}</td></tr>"
    )


def _agencies(report: QuarterlyReport, limit: int) -> str:
    agencies = list(report.agencies)
    shown, rest = agencies, []
    if 0 < limit < len(agencies):
        busiest = sorted(agencies, key=lambda a: (-(a.sent + a.received), a.code))
        shown, rest = busiest[:limit], busiest[limit:]
    rows = "".join(_agency_row(a) for a in shown)
    if rest:
        rows += (
            f"<tr><td></td><td>{escape(vi('others'))} ({number(len(rest))})</td>"
            f"<td class=n>{number(sum(a.sent for a in rest))}</td>"
            f"<td class=n>{number(sum(a.sent_with_paper for a in rest))}</td>"
            f"<td class=n>{number(sum(a.received for a in rest))}</td>"
            f"<td class=n>{number(sum(a.received_with_paper for a in rest))}</td><td></td></tr>"
        )
    sent, received = report.sent, report.received
    rows += (
        f"<tr class=total><td></td><td>{escape(vi('total'))} ({number(len(agencies))})</td>"
        f"<td class=n>{number(sent.total)}</td><td class=n>{number(sent.with_paper)}</td>"
        f"<td class=n>{number(received.total)}</td><td class=n>{number(received.with_paper)}</td>"
        "<td></td></tr>"
    )
    note = (
        f'<p class="note">{number(len(shown))} / {number(len(agencies))} — '
        f"{escape(vi('full_table'))} ({escape(en('full_table'))}).</p>"
        if rest
        else ""
    )
    return (
        f'<section class="agencies"><h2>5. {_both("agencies")}</h2>{note}<table><tr>'
        f"<th>{_both('code', True)}</th><th>{_both('name', True)}</th>"
        f"<th>{_both('sent_short', True)}</th><th>{_both('paper_short', True)}</th>"
        f"<th>{_both('received_short', True)}</th><th>{_both('paper_short', True)}</th>"
        f"<th>{_both('status_codes', True)}</th></tr>{rows}</table></section>"
    )
