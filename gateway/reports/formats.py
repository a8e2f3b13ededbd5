"""The four outputs of the report, as the CLI writes them and the API answers them."""

from __future__ import annotations

import json
from enum import StrEnum

from gateway.errors import InvalidRequest
from gateway.reports.quarterly import QuarterlyReport
from gateway.reports.render_html import DEFAULT_AGENCY_ROWS, render_html
from gateway.reports.render_tables import render_csv, render_xlsx


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"
    XLSX = "xlsx"

    @classmethod
    def parse(cls, value: str) -> ReportFormat:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise InvalidRequest(f"format {value[:20]!r}: use json, csv, html or xlsx") from None

    @property
    def media_type(self) -> str:
        return {
            ReportFormat.JSON: "application/json",
            ReportFormat.CSV: "text/csv; charset=utf-8",
            ReportFormat.HTML: "text/html; charset=utf-8",
            ReportFormat.XLSX: (
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            ),
        }[self]

    @property
    def is_text(self) -> bool:
        return self is not ReportFormat.XLSX


def render(
    report: QuarterlyReport, fmt: ReportFormat, agency_rows: int = DEFAULT_AGENCY_ROWS
) -> bytes:
    """The report's bytes in `fmt`; `agency_rows` bounds the printed (HTML) table only."""
    if fmt is ReportFormat.JSON:
        return (json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n").encode()
    if fmt is ReportFormat.CSV:
        return render_csv(report).encode()
    if fmt is ReportFormat.HTML:
        return render_html(report, agency_rows).encode()
    return render_xlsx(report)


def file_name(report: QuarterlyReport, fmt: ReportFormat) -> str:
    """`bao-cao-lien-thong-2026-Q3.xlsx`."""
    return f"bao-cao-lien-thong-{report.period.slug()}.{fmt.value}"
