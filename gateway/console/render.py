"""Pages: the Jinja2 templates (package data under `templates/`, autoescaped) and what every
page knows — its language, the signed-in operator, the node's time zone, links that keep
the language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gateway.console.i18n import Words, language
from gateway.console.session import Session
from gateway.operators.roles import ROLE_PERMISSIONS, Operator, Permission
from gateway.runtime import Runtime

TEMPLATES = Environment(
    loader=PackageLoader("gateway.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime_of()
    return runtime


@dataclass(frozen=True, slots=True)
class User:
    """The signed-in operator (read again from the store on every request)."""

    operator: Operator
    session: Session
    csrf: str

    @property
    def name(self) -> str:
        return self.operator.name

    @property
    def role(self) -> str:
        return self.operator.role.value

    def may(self, permission: str) -> bool:
        """What a page offers; the action itself checks again (`Operator.require`)."""
        return Permission(permission) in ROLE_PERMISSIONS[self.operator.role]


class Page:
    """What templates call `page`: words, links, times."""

    def __init__(self, request: Request, user: User | None = None) -> None:
        self.request = request
        self.user = user
        self.lang = language(request.query_params.get("lang"))
        self.words = Words(self.lang)
        self.root = str(request.scope.get("root_path", ""))
        runtime = runtime_of(request)
        self.zone = ZoneInfo(runtime.settings.timezone)

    def t(self, key: str) -> str:
        return self.words.t(key)

    def state(self, state: str) -> str:
        return self.words.state(state)

    def url(self, path: str, params: dict[str, Any] | None = None, **more: Any) -> str:
        """A console link that keeps the language; empty parameters are left out."""
        query: list[tuple[str, str]] = []
        for key, value in {**(params or {}), **more}.items():
            values = value if isinstance(value, list | tuple) else [value]
            query += [(key, str(v)) for v in values if v not in (None, "")]
        if self.lang != "vi" and "lang" not in dict(query):
            query.append(("lang", self.lang))
        return self.root + path + (f"?{urlencode(query)}" if query else "")

    def other_language(self) -> str:
        """This page in the other language (the overview, for the answer to a form)."""
        other = "en" if self.lang == "vi" else "vi"
        query = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        path = self.request.url.path
        if self.request.method != "GET":
            query, path = [], self.root + "/"
        if other != "vi":
            query.append(("lang", other))
        return path + (f"?{urlencode(query)}" if query else "")

    def time(self, at: datetime | None) -> str:
        return at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S") if at else "–"

    @staticmethod
    def age(seconds: float) -> str:
        seconds = int(max(0.0, seconds))
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        if days:
            return f"{days}d {hours:02d}h"
        if hours:
            return f"{hours}h {minutes:02d}m"
        return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def render(page: Page, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(page=page, user=page.user, **context)
    return HTMLResponse(html, status_code=status)
