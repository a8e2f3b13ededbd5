"""The overview: documents per day, deliveries by state, the oldest age per state against
its stuck threshold, and status feedback coverage; charts drawn here as SVG, their numbers
in tables beside them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.console import charts
from gateway.console.auth import UserDep
from gateway.console.render import Page, render, runtime_of
from gateway.delivery_states import DeliveryState

router = APIRouter()
DAYS = 14
FEEDBACK_DAYS = 30


def day_bounds(now: datetime, days: int, page: Page) -> list[datetime]:
    """The starts of the last `days` days in the node's time zone, and the end of today."""
    today = now.astimezone(page.zone).date()
    first = today - timedelta(days=days - 1)
    return [datetime.combine(first + timedelta(days=i), time(), page.zone) for i in range(days + 1)]


@router.get("/")
async def overview(request: Request, user: UserDep) -> HTMLResponse:
    page = Page(request, user)
    runtime = runtime_of(request)
    now = datetime.now(UTC)
    traffic = await runtime.console.traffic_by_day(day_bounds(now, DAYS, page))
    states = {
        f.state: f for f in await runtime.console.state_figures(runtime.settings.stuck_thresholds)
    }
    coverage = await runtime.console.feedback_coverage(now - timedelta(days=FEEDBACK_DAYS))
    thresholds = runtime.settings.stuck_thresholds
    ordered = [states[s.value] for s in DeliveryState if s.value in states]
    oldest = [
        charts.Bar(
            label=page.state(f.state),
            value=(now - f.oldest_changed_at).total_seconds() / 3600,
            note=f"{f.stuck} {page.t('overview.stuck_count')}" if f.stuck else "",
            alert=f.stuck > 0,
            shown=page.age((now - f.oldest_changed_at).total_seconds()),
        )
        for f in ordered
        if f.state in thresholds and f.oldest_changed_at is not None
    ]
    return render(
        page,
        "overview.html",
        traffic=traffic,
        traffic_chart=charts.grouped_columns(
            page.t("overview.traffic"),
            [(d.day.strftime("%d/%m"), (d.sent, d.received)) for d in traffic],
            (page.t("overview.sent"), page.t("overview.received")),
        ),
        states=ordered,
        states_chart=charts.horizontal_bars(
            page.t("overview.states"),
            [charts.Bar(page.state(f.state), f.count) for f in ordered],
        ),
        oldest=oldest,
        oldest_chart=charts.horizontal_bars(page.t("overview.oldest"), oldest),
        coverage=coverage,
        coverage_chart=charts.shares(
            page.t("overview.feedback"),
            [
                (page.t("overview.feedback.five"), coverage.five_or_more),
                (page.t("overview.feedback.three"), coverage.three_to_four),
                (page.t("overview.feedback.one"), coverage.one_to_two),
                (page.t("overview.feedback.none"), coverage.none),
            ],
            charts.COVERAGE,
        ),
    )
