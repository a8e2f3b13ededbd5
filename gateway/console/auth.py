"""Signing in with an operator's name and token, and who is signed in on each request.

The same credentials and checks as the operator API (`gateway.api.deps.bearer_operator`):
names checked before the database is asked, tokens compared in constant time against their
SHA-256 (an unknown name against a dummy hash, so both refusals take the same time), disabled
operators refused. A session is re-checked against the store on every request: disabling an
operator, or giving it a new token, ends its sessions at their next click, and a role change
applies at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.console.csrf import check_same_origin, check_token, token_for
from gateway.console.errors import SignInRequired
from gateway.console.forms import Form, read_form
from gateway.console.render import User, runtime_of
from gateway.console.session import COOKIE, open_session, token_tag
from gateway.operators.roles import (
    OPERATOR_NAME,
    Operator,
    OperatorCredentials,
    Permission,
    token_hash,
    token_matches,
)
from gateway.runtime import Runtime

_NO_SUCH_TOKEN = token_hash("no operator has this token")


async def check_credentials(runtime: Runtime, name: str, token: str) -> OperatorCredentials | None:
    """The operator these credentials name, or None (unknown, disabled or wrong token)."""
    name = name.strip()
    found = await runtime.operators.get_operator(name) if OPERATOR_NAME.fullmatch(name) else None
    matches = token_matches(token.strip(), found.token_sha256 if found else _NO_SUCH_TOKEN)
    if found is None or not found.record.enabled or not matches:
        return None
    return found


async def current_user(request: Request) -> User:
    runtime = runtime_of(request)
    key = runtime.console_key
    session = open_session(key, request.cookies.get(COOKIE))
    if session is None or not OPERATOR_NAME.fullmatch(session.name):
        raise SignInRequired()
    found = await runtime.operators.get_operator(session.name)
    if (
        found is None
        or not found.record.enabled
        or token_tag(key, found.token_sha256) != session.token_tag
    ):
        raise SignInRequired()
    return User(
        Operator(found.record.name, found.record.role),
        session,
        token_for(key, "session", session.session_id),
    )


UserDep = Annotated[User, Depends(current_user)]


async def posted_form(request: Request, user: User, permission: Permission) -> Form:
    """A form the signed-in operator posted: the role first (as the operator API checks it
    before reading a body), then the origin, then the body and its CSRF token."""
    user.operator.require(permission)
    check_same_origin(request)
    form = await read_form(request, runtime_of(request).settings.max_json_body_bytes)
    check_token(user.csrf, form.get("csrf"))
    return form
