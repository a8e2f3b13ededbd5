"""The operator console as a browser without script would use it: sign in through the form,
read each page's CSRF token, post forms. For HTTP tests (in-process nodes) and the browser
tests' setup alike."""

from __future__ import annotations

import re
from typing import Any

import httpx

from gateway.operators import Role, new_token, token_hash
from gateway.ports import OperatorStore
from tests.support.operators import SETUP

ROOT = "/console"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, f"no CSRF field in the page: {html[:500]}"
    return found.group(1)


async def add_console_operator(store: OperatorStore, name: str, role: str) -> str:
    """Register an operator; its token."""
    token = new_token()
    await store.add_operator(name, Role(role), token_hash(token), SETUP)
    return token


class ConsoleClient:
    """One browser: its own cookie jar on the console of a node."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @classmethod
    def of(cls, app: Any, base_url: str = "http://gateway.test") -> ConsoleClient:
        """A browser on an in-process node's application."""
        return cls(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url))

    async def close(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, **params: str | list[str]) -> httpx.Response:
        return await self.http.get(ROOT + path, params=params or None)

    async def post(
        self, path: str, data: dict[str, str | list[str]], **headers: str
    ) -> httpx.Response:
        return await self.http.post(ROOT + path, data=data, headers=headers)

    async def sign_in(self, name: str, token: str) -> httpx.Response:
        form = await self.get("/login")
        assert form.status_code == 200, form.text
        return await self.post("/login", {"csrf": csrf_of(form.text), "name": name, "token": token})

    async def csrf(self) -> str:
        """The session's form token, read from a page as a browser would."""
        page = await self.get("/")
        assert page.status_code == 200, page.text
        return csrf_of(page.text)
