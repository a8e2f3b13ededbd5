"""Peer nodes (reachability, last poll, backlog) and the trust store: both read only here
(`lienthong peers …`, `lienthong trust …` change them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.console.auth import UserDep
from gateway.console.render import Page, render, runtime_of
from gateway.runtime import trust_entries

router = APIRouter()


@router.get("/peers")
async def peers(request: Request, user: UserDep) -> HTMLResponse:
    page = Page(request, user)
    return render(page, "peers.html", peers=await runtime_of(request).console.peer_statuses())


@router.get("/trust")
async def trust(request: Request, user: UserDep) -> HTMLResponse:
    page = Page(request, user)
    settings = runtime_of(request).settings
    return render(page, "trust.html", trust_dir=settings.trust_dir, entries=trust_entries(settings))
