"""`GET /api/v1/operator/reports/quarterly`: the quarterly report of SPEC §4.3 (the same as
`lienthong report quarterly`), for any operator role, auditors included (it only reads)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gateway.api.deps import Reader, RuntimeDep
from gateway.reports import (
    DEFAULT_AGENCY_ROWS,
    Period,
    ReportFormat,
    file_name,
    quarterly_report,
    render,
)

router = APIRouter(prefix="/api/v1/operator/reports", tags=["operator"])

CONTENT: dict[str, Any] = {f.media_type.partition(";")[0]: {} for f in ReportFormat}
"""Every format's media type, for the OpenAPI document."""


@router.get(
    "/quarterly",
    response_class=Response,
    responses={200: {"description": "The report in the chosen format", "content": CONTENT}},
)
async def quarterly(
    runtime: RuntimeDep,
    _operator: Reader,
    year: Annotated[int | None, Query(description="The quarter's year (with quarter)")] = None,
    quarter: Annotated[int | None, Query(ge=1, le=4, description="1 to 4 (with year)")] = None,
    first: Annotated[
        str | None,
        Query(
            alias="from",
            description="First day YYYY-MM-DD, included (with to); with year and quarter, "
            "the quarter's title over these days",
        ),
    ] = None,
    last: Annotated[
        str | None, Query(alias="to", description="Last day YYYY-MM-DD, included")
    ] = None,
    format: Annotated[str, Query(description="json, csv, html or xlsx")] = "json",
    agency_rows: Annotated[
        int, Query(ge=0, le=100_000, description="HTML: agencies printed (0: all)")
    ] = DEFAULT_AGENCY_ROWS,
) -> Response:
    """Documents sent and received by local agencies in the period (days in the node's
    LIENTHONG_TIMEZONE): paper copies, levels, through peers or inside, status feedback
    coverage, and a table per agency. JSON has the pinned shape of SPEC §4.3; csv, html and
    xlsx come as attachments named after the period."""
    period = Period.parse(year, quarter, first, last)
    fmt = ReportFormat.parse(format)
    settings = runtime.settings
    report = await quarterly_report(
        runtime.reports, period, timezone=settings.timezone, node_code=settings.node_code
    )
    headers = {}
    if fmt is not ReportFormat.JSON:
        disposition = "inline" if fmt is ReportFormat.HTML else "attachment"
        headers["Content-Disposition"] = f'{disposition}; filename="{file_name(report, fmt)}"'
    return Response(render(report, fmt, agency_rows), media_type=fmt.media_type, headers=headers)
