"""The agency directory: search by code or name, bounded (the national directory holds about
111,000 agencies). Read only here: merge, rename and retire are CLI commands."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.console.auth import UserDep
from gateway.console.render import Page, render, runtime_of

router = APIRouter()
LIMIT = 100
MAX_QUERY = 200


@router.get("/directory")
async def directory(request: Request, user: UserDep, q: str = "") -> HTMLResponse:
    page = Page(request, user)
    query = q.strip()[:MAX_QUERY]
    agencies, total = await runtime_of(request).console.search_agencies(query, LIMIT)
    return render(page, "directory.html", q=query, agencies=agencies, total=total, limit=LIMIT)
