"""The quarterly report (SPEC §4.3). Not on this branch yet: the page says so."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.console.auth import UserDep
from gateway.console.render import Page, render

router = APIRouter()


@router.get("/reports")
async def reports(request: Request, user: UserDep) -> HTMLResponse:
    return render(Page(request, user), "reports.html")
