"""The report as tables: CSV (one rectangular table) and XLSX (a summary sheet and an
agencies sheet, through openpyxl).

CSV layout — one header row, then one row per agency (`row` = `agency`, in the directory's
order), one per level (`row` = `level`, `code` empty) and one total (`row` = `total`); counts
as plain integers, shares as percentages with a dot (`12.5`), UTF-8 with a byte-order mark
(so that Excel shows Vietnamese names) and CRLF line ends (RFC 4180). Filter on `row` to
read one part. `status_codes` is the number of distinct feedback codes an agency sent back;
the status-feedback buckets are the agency rows with `received` > 0 counted by it (≥5, 3–4,
<3), and are given in the JSON, HTML and XLSX outputs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from gateway.reports.labels import both, en, level_label, vi
from gateway.reports.quarterly import AgencyTraffic, QuarterlyReport, Split, percent

CSV_COLUMNS = (
    "row",
    "code",
    "name",
    "level",
    "sent",
    "sent_electronic_only",
    "sent_with_paper",
    "sent_with_paper_percent",
    "sent_via_peers",
    "received",
    "received_electronic_only",
    "received_with_paper",
    "received_with_paper_percent",
    "received_via_peers",
    "status_codes",
    "status_codes_sent",
)


def _counts(sent: Split, received: Split, sent_peers: int, received_peers: int) -> list[Any]:
    return [
        sent.total,
        sent.electronic_only,
        sent.with_paper,
        percent(sent.with_paper, sent.total),
        sent_peers,
        received.total,
        received.electronic_only,
        received.with_paper,
        percent(received.with_paper, received.total),
        received_peers,
    ]


def _agency_counts(a: AgencyTraffic) -> list[Any]:
    return _counts(
        Split(a.sent, a.sent_with_paper),
        Split(a.received, a.received_with_paper),
        a.sent_via_peers,
        a.received_via_peers,
    )


def table_rows(report: QuarterlyReport) -> list[list[Any]]:
    """The CSV's rows after its header (the XLSX agencies sheet shows the agency and total
    rows of the same table)."""
    rows: list[list[Any]] = []
    for a in report.agencies:
        codes = a.feedback_codes
        rows.append(
            [
                "agency",
                a.code,
                a.name or "",
                a.level,
                *_agency_counts(a),
                len(codes),
                " ".join(codes),
            ]
        )
    for r in report.by_level:
        peers = [x for x in report.agencies if x.level == r.level]
        rows.append(
            [
                "level",
                "",
                level_label(r.level)[0],
                r.level,
                *_counts(
                    r.sent,
                    r.received,
                    sum(x.sent_via_peers for x in peers),
                    sum(x.received_via_peers for x in peers),
                ),
                "",
                "",
            ]
        )
    rows.append(
        [
            "total",
            "",
            vi("total"),
            "",
            *_counts(
                report.sent, report.received, report.sent_via_peers, report.received_via_peers
            ),
            "",
            "",
        ]
    )
    return rows


def render_csv(report: QuarterlyReport) -> str:
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(table_rows(report))
    return out.getvalue()


# -- XLSX --------------------------------------------------------------------------------

BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDDDDD")
PERCENT = "0.0%"
COUNT = "#,##0"


def _header(sheet: Worksheet, row: int, labels: Sequence[str]) -> None:
    for column, label in enumerate(labels, start=1):
        cell = sheet.cell(row, column, label)
        cell.font, cell.fill = BOLD, HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _put(sheet: Worksheet, row: int, values: Sequence[Any], formats: Sequence[str] = ()) -> None:
    for column, value in enumerate(values, start=1):
        cell = sheet.cell(row, column, value)
        if column - 1 < len(formats) and formats[column - 1]:
            cell.number_format = formats[column - 1]


def _title(sheet: Worksheet, row: int, text: str) -> int:
    sheet.cell(row, 1, text).font = Font(bold=True, size=12)
    return row + 1


def _summary_sheet(sheet: Worksheet, report: QuarterlyReport) -> None:
    title_vi, title_en = report.period.title()
    sheet.cell(1, 1, vi("title")).font = Font(bold=True, size=14)
    sheet.cell(2, 1, en("title")).font = Font(italic=True)
    _put(sheet, 3, [both("period"), f"{title_vi} ({title_en})"])
    _put(sheet, 4, [both("node"), report.node_code])
    _put(sheet, 5, [both("timezone"), report.timezone])
    _put(sheet, 6, [both("generated"), report.generated_at.isoformat(timespec="seconds")])

    row = _title(sheet, 8, f"1. {both('summary')}")
    _header(
        sheet,
        row,
        [
            "",
            both("total"),
            both("electronic_only"),
            both("share"),
            both("with_paper"),
            both("share"),
        ],
    )
    formats = ["", COUNT, COUNT, PERCENT, COUNT, PERCENT]
    for key, split in (("sent", report.sent), ("received", report.received)):
        row += 1
        _put(
            sheet,
            row,
            [
                both(key),
                split.total,
                split.electronic_only,
                percent(split.electronic_only, split.total) / 100,
                split.with_paper,
                percent(split.with_paper, split.total) / 100,
            ],
            formats,
        )

    row = _title(sheet, row + 2, f"2. {both('by_level')}")
    _header(
        sheet,
        row,
        [
            both("level"),
            both("sent"),
            both("sent_with_paper"),
            both("received"),
            both("received_with_paper"),
        ],
    )
    for r in report.by_level:
        row += 1
        _put(
            sheet,
            row,
            [
                " ".join(level_label(r.level)),
                r.sent.total,
                r.sent.with_paper,
                r.received.total,
                r.received.with_paper,
            ],
            ["", COUNT, COUNT, COUNT, COUNT],
        )

    row = _title(sheet, row + 2, f"3. {both('routes')}")
    _header(sheet, row, ["", both("inside"), both("via_peers"), both("share")])
    for key, total, peers in (
        ("sent", report.sent.total, report.sent_via_peers),
        ("received", report.received.total, report.received_via_peers),
    ):
        row += 1
        _put(
            sheet,
            row,
            [both(key), total - peers, peers, percent(peers, total) / 100],
            ["", COUNT, COUNT, PERCENT],
        )

    feedback = report.feedback
    row = _title(sheet, row + 2, f"4. {both('feedback')}")
    _header(sheet, row, ["", both("agencies_count"), both("share")])
    for key, n in (
        ("feedback_agencies", feedback.agencies),
        ("five_or_more", feedback.five_or_more),
        ("three_to_four", feedback.three_to_four),
        ("fewer_than_three", feedback.fewer_than_three),
    ):
        row += 1
        _put(sheet, row, [both(key), n, percent(n, feedback.agencies) / 100], ["", COUNT, PERCENT])
    sheet.column_dimensions["A"].width = 48
    for column in "BCDEF":
        sheet.column_dimensions[column].width = 20


AGENCY_HEADERS = (
    "code",
    "name",
    "level",
    "sent",
    "sent_electronic_only",
    "sent_with_paper",
    "sent_paper_share",
    "sent_via_peers",
    "received",
    "received_electronic_only",
    "received_with_paper",
    "received_paper_share",
    "received_via_peers",
    "status_codes",
)


def _agencies_sheet(sheet: Worksheet, report: QuarterlyReport) -> None:
    _header(sheet, 1, [both(key) for key in AGENCY_HEADERS])
    formats = [
        "",
        "",
        "",
        COUNT,
        COUNT,
        COUNT,
        PERCENT,
        COUNT,
        COUNT,
        COUNT,
        COUNT,
        PERCENT,
        COUNT,
        "",
    ]
    rows = [r for r in table_rows(report) if r[0] in ("agency", "total")]
    for index, values in enumerate(rows, start=2):
        counts = values[4:14]
        counts[3] /= 100  # shares as fractions, shown with the percent format
        counts[8] /= 100
        status_codes = values[14]
        _put(sheet, index, [*values[1:4], *counts, status_codes], formats)
        if values[0] == "total":
            for cell in sheet[index]:
                cell.font = BOLD
    sheet.freeze_panes = "C2"
    # The filter spans the agencies, not the total row under them (sorting keeps it last).
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(AGENCY_HEADERS))}{len(rows)}"
    sheet.column_dimensions["A"].width = 18
    sheet.column_dimensions["B"].width = 50
    for column in range(3, len(AGENCY_HEADERS) + 1):
        sheet.column_dimensions[get_column_letter(column)].width = 14
    sheet.row_dimensions[1].height = 45


def render_xlsx(report: QuarterlyReport) -> bytes:
    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = vi("summary")
    _summary_sheet(summary, report)
    _agencies_sheet(book.create_sheet("Cơ quan"), report)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
