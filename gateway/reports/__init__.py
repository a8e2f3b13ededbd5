"""The quarterly report (SPEC §4.3): what provinces publish each quarter, from the node's
own traffic.

    period         the days a report covers (a quarter, or any range) in the node's zone
    quarterly      the counting rules, the report built from per-agency aggregates, its JSON
    charts         inline SVG charts (server-side, printable)
    labels         Vietnamese and English words, numbers written the Vietnamese way
    render_html    the printable page
    render_tables  CSV and XLSX
    formats        the four outputs by name, media type and file name

The aggregates come from the database (`ReportStore` in `gateway.ports`, implemented by
`adapters.db.store.reports`): GROUP BY per agency, never a message loaded into Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.reports.formats import ReportFormat, file_name, render
from gateway.reports.period import Period
from gateway.reports.quarterly import AgencyTraffic, QuarterlyReport
from gateway.reports.render_html import DEFAULT_AGENCY_ROWS

if TYPE_CHECKING:
    from gateway.ports import ReportStore

__all__ = [
    "DEFAULT_AGENCY_ROWS",
    "AgencyTraffic",
    "Period",
    "QuarterlyReport",
    "ReportFormat",
    "file_name",
    "quarterly_report",
    "render",
]


async def quarterly_report(
    store: ReportStore, period: Period, *, timezone: str, node_code: str
) -> QuarterlyReport:
    """The report of `period` (days in `timezone`, the node's LIENTHONG_TIMEZONE)."""
    start, end = period.bounds(timezone)
    rows = await store.traffic_by_agency(start, end)
    return QuarterlyReport.build(
        period, rows, timezone=timezone, node_code=node_code, generated_at=datetime.now(UTC)
    )
