"""Stuck deliveries (`lienthong messages stuck`, `GET /api/v1/operator/stuck`): longer in a
state than its threshold, oldest first; `available` ones are the daily list of units that
have not collected their documents. Downloadable as CSV (UTF-8 with a BOM, so spreadsheet
programs read the Vietnamese names)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from gateway.console.auth import UserDep
from gateway.console.render import Page, render, runtime_of
from gateway.records import DeliveryView

router = APIRouter()
LIMIT = 5000
CSV_COLUMNS = (
    "state",
    "age_hours",
    "to_code",
    "from_code",
    "subject",
    "code",
    "state_changed_at",
    "fail_count",
    "delivery_id",
    "message_id",
)


async def _stuck(request: Request, state: str | None) -> list[tuple[str, DeliveryView]]:
    runtime = runtime_of(request)
    found = await runtime.store.stuck(runtime.settings.stuck_thresholds, LIMIT)
    return [(s, v) for s, v in found if state in (None, "", s)]


@router.get("/stuck")
async def stuck(
    request: Request, user: UserDep, state: Annotated[str | None, Query()] = None
) -> HTMLResponse:
    page = Page(request, user)
    found = await _stuck(request, state)
    return render(
        page,
        "stuck.html",
        found=found,
        state=state or "",
        states=list(runtime_of(request).settings.stuck_thresholds),
        now=datetime.now(UTC),
    )


@router.get("/stuck.csv")
async def stuck_csv(
    request: Request, user: UserDep, state: Annotated[str | None, Query()] = None
) -> Response:
    page = Page(request, user)
    now = datetime.now(UTC)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for in_state, view in await _stuck(request, state):
        writer.writerow(
            (
                in_state,
                f"{(now - view.state_changed_at).total_seconds() / 3600:.1f}",
                view.to_code,
                view.from_code,
                view.subject or "",
                "/".join(p for p in (view.code_number, view.code_notation) if p),
                page.time(view.state_changed_at),
                view.fail_count,
                view.delivery_id,
                view.message_id,
            )
        )
    day = now.astimezone(page.zone).date().isoformat()
    name = f"stuck-{state + '-' if state else ''}{day}.csv"
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
