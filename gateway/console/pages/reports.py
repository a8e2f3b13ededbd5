"""The quarterly report (SPEC §4.3, `gateway.reports`): a period chosen by quarter or by
days, its figures and charts on the page, and the four downloads (HTML to print, CSV, JSON,
XLSX) the CLI and the operator API give. Every role reads it, as in the operator API.

The printable HTML is the report's own standalone document: it is served with a policy of
its own that allows its inline stylesheet and nothing else (still no script, no fetch).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from gateway.console import charts
from gateway.console.auth import UserDep
from gateway.console.render import Page, render, runtime_of
from gateway.errors import InvalidRequest
from gateway.reports import (
    Period,
    QuarterlyReport,
    ReportFormat,
    file_name,
    quarterly_report,
)
from gateway.reports import render as render_report
from gateway.reports.labels import level_label

router = APIRouter()
TOP_AGENCIES = 20
REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _period(
    page: Page,
    year: int | None,
    quarter: int | None,
    first: str | None,
    last: str | None,
) -> Period:
    """The chosen period; by default the quarter of today (in the node's time zone)."""
    if year is None and quarter is None and not first and not last:
        today = datetime.now(UTC).astimezone(page.zone).date()
        return Period.of_quarter(today.year, (today.month - 1) // 3 + 1)
    return Period.parse(year, quarter, first or None, last or None)


async def _report(request: Request, period: Period) -> QuarterlyReport:
    settings = runtime_of(request).settings
    return await quarterly_report(
        runtime_of(request).reports,
        period,
        timezone=settings.timezone,
        node_code=settings.node_code,
    )


Year = Annotated[int | None, Query(ge=1970, le=2999)]
Quarter = Annotated[int | None, Query(ge=1, le=4)]
First = Annotated[str | None, Query(alias="from")]
Last = Annotated[str | None, Query(alias="to")]


@router.get("/reports")
async def reports(
    request: Request,
    user: UserDep,
    year: Year = None,
    quarter: Quarter = None,
    first: First = None,
    last: Last = None,
) -> HTMLResponse:
    page = Page(request, user)
    params = {"year": year, "quarter": quarter, "from": first, "to": last}
    try:
        period = _period(page, year, quarter, first, last)
    except InvalidRequest as error:
        return render(
            page, "reports.html", status=400, problem=error.detail, report=None, params=params
        )
    report = await _report(request, period)
    figures = report.as_json()
    lang = 0 if page.lang == "vi" else 1
    levels = [(level_label(row.level)[lang], row) for row in report.by_level]
    busiest = sorted(report.agencies, key=lambda a: (-(a.sent + a.received), a.code))
    feedback = figures["status_feedback"]
    return render(
        page,
        "reports.html",
        problem=None,
        report=report,
        figures=figures,
        title=report.period.title()[lang],
        params=params,
        levels=levels,
        agencies=busiest[:TOP_AGENCIES],
        formats=[f.value for f in ReportFormat],
        levels_chart=charts.grouped_columns(
            page.t("reports.by_level"),
            [(name, (row.sent.total, row.received.total)) for name, row in levels],
            (page.t("reports.sent"), page.t("reports.received")),
        ),
        feedback_chart=charts.shares(
            page.t("reports.feedback"),
            [
                (page.t("overview.feedback.five"), feedback["five_or_more"]),
                (page.t("overview.feedback.three"), feedback["three_to_four"]),
                (page.t("reports.fewer"), feedback["fewer_than_three"]),
            ],
            charts.COVERAGE,
        ),
    )


@router.get("/reports/quarterly.{fmt}")
async def download(
    request: Request,
    user: UserDep,
    fmt: str,
    year: Year = None,
    quarter: Quarter = None,
    first: First = None,
    last: Last = None,
) -> Response:
    page = Page(request, user)
    chosen = ReportFormat.parse(fmt)
    report = await _report(request, _period(page, year, quarter, first, last))
    headers = {}
    if chosen is ReportFormat.HTML:
        headers["content-security-policy"] = REPORT_POLICY
        headers["content-disposition"] = f'inline; filename="{file_name(report, chosen)}"'
    else:
        headers["content-disposition"] = f'attachment; filename="{file_name(report, chosen)}"'
    return Response(render_report(report, chosen), media_type=chosen.media_type, headers=headers)
