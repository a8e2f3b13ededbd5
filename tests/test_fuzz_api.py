"""Property-based fuzzing of `/api/v1` (and the health routes) from the OpenAPI document.

schemathesis generates requests for every documented operation — valid ones and ones that
break the documented schema — and each is sent to a real `lienthong serve` process on
loopback under a credential drawn per request: the caller the route is for (a system, an
admin operator), or another one (an auditor, the other kind of caller, a wrong secret, none
at all). Every answer must be:

- never a 5xx (the database is up; 503 is for when it is not, `test_faults.py`);
- an error as problem+json (`type`, `title`, `status` = the HTTP status, `code`);
- what the OpenAPI document says: a documented status code and content type, a body that
  matches its schema, a 401 without credentials (`ignored_auth`), a 405 with `Allow` for an
  undocumented method (schemathesis' checks);

and the gateway's log must stay free of ERROR lines. The budget is `EXAMPLES` per operation
(`tests/support/fuzzing.py` for longer runs).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import CheckContext
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from gateway.api.app import create_app
from gateway.settings import Settings
from tests.support.fuzzing import fuzz, record
from tests.support.nodes import Backing
from tests.support.served import Served, errors_in, start_served
from tests.support.strategies import (
    has_lone_surrogate,
    mutated_json,
    path_text,
    url_text,
)

EXAMPLES = 40
FUZZED_PATHS = r"^/api/v1/|^/(healthz|readyz|metrics)$"

NOT_CHECKED = [positive_data_acceptance]
"""A schema describes types, not every rule: a package that is any binary string, a `since`
that is any string or a cursor that is any string fit it and are still refused (422, 400)."""

schema = schemathesis.openapi.from_dict(create_app(Settings(environment="test")).openapi()).include(
    path_regex=FUZZED_PATHS
)
# Credentials are drawn by the test (`credentials_for`), not generated from the scheme.
schema.config.generation.update(with_security_parameters=False)


@pytest.fixture(scope="module")
async def served(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Served]:
    backing = Backing(backend, tmp_path_factory.mktemp(f"fuzz-api-{backend}"), request)
    await backing.create()
    try:
        node = await start_served(backing)
        try:
            yield node
        finally:
            node.process.stop()
    finally:
        await backing.remove()


def credentials_for(path: str, served: Served) -> st.SearchStrategy[str | None]:
    """Mostly the caller the route is for, so that requests get past authentication; else
    anyone else, or nobody."""
    c = served.credentials
    if path.startswith("/api/v1/operator"):
        right: list[str] = [c.admin]
        others = [c.auditor, c.sender, c.receiver]
    elif path.startswith("/api/v1/"):
        right = [c.sender, c.receiver]
        others = [c.bystander, c.admin]
    else:
        right, others = [], [c.sender, c.admin]
    anyone = st.sampled_from([*others, *c.wrong()]) | st.none()
    if not right:
        return st.none() | anyone
    return st.one_of(st.sampled_from(right), st.sampled_from(right), st.sampled_from(right), anyone)


def perturb(case: schemathesis.Case, data: st.DataObject, served: Served) -> bool:
    """Point path parameters at things that exist (past the 404s), and put known-bad text in
    some parameters and body strings (schemathesis seldom generates a NUL or a surrogate).
    True when the case was changed."""
    changed = False
    for name in list(case.path_parameters or {}):
        choice = data.draw(st.sampled_from(["generated", "known", "nasty"]), label=name)
        if choice == "known" and name in served.known:
            case.path_parameters[name] = data.draw(st.sampled_from(served.known[name]))
        elif choice == "nasty":
            case.path_parameters[name] = data.draw(path_text(), label=name)
            changed = True
    for name in list(case.query or {}):
        if data.draw(st.booleans(), label=f"replace {name}"):
            case.query[name] = data.draw(url_text(), label=name)
            changed = True
    if isinstance(case.body, dict | list) and data.draw(st.booleans(), label="body text"):
        body = data.draw(mutated_json(case.body), label="body")
        # schemathesis' validators cannot hold a lone surrogate: such a body goes as the
        # bytes json.dumps writes (`"\\ud800"`), which is what a client would send.
        case.body = json.dumps(body).encode() if has_lone_surrogate(body) else body
        changed = True
    return changed


def who_label(who: str | None, served: Served) -> str:
    named = {value: name for name, value in vars(served.credentials).items()}
    return "anonymous" if who is None else named.get(who, "wrong")


def problem_json(ctx: CheckContext, response: Response, case: schemathesis.Case) -> bool | None:
    """An error is RFC 9457 problem+json whose `status` is the HTTP status."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} answered as {content_type!r}: {response.text[:300]}"
    )
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("status") == response.status_code, body
    for name in ("type", "title", "code"):
        assert isinstance(body.get(name), str) and body[name], (name, body)
    return True


@schema.given(data=st.data())
@schema.parametrize()
@fuzz(EXAMPLES)
def test_api_operation(case: schemathesis.Case, data: st.DataObject, served: Served) -> None:
    # What `perturb` put in is judged by the answer's status and shape, not by whether the
    # schema calls it valid: the node may take "" or "-1" as "not given", as documented.
    excluded = NOT_CHECKED + ([negative_data_rejection] if perturb(case, data, served) else [])
    who = data.draw(credentials_for(case.path, served), label="Authorization")
    # Generated credentials are dropped: the drawn one goes in as an explicit header, which
    # is what makes schemathesis probe each 2xx again without it and with a wrong one.
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    offset = served.log_size()
    with requests.Session() as session:
        response = case.call_and_validate(
            base_url=served.url,
            session=session,
            headers={"Authorization": who} if who else None,
            additional_checks=[problem_json],
            excluded_checks=excluded,
        )
    record("api", f"{case.method} {case.path}", f"{who_label(who, served)} {response.status_code}")
    assert not errors_in(served.log_since(offset)), served.log_since(offset)[-3000:]


# -- what this fuzzer found, pinned ----------------------------------------------------------


def test_the_served_document_is_the_one_fuzzed(served: Served) -> None:
    """The schema above is built in-process; the node serves the same document."""
    served_doc = requests.get(f"{served.url}/openapi.json", timeout=10).json()
    assert served_doc == create_app(Settings(environment="test")).openapi()


def test_every_api_operation_documents_its_errors_as_problems() -> None:
    doc = create_app(Settings(environment="test")).openapi()
    for path, operations in doc["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses or (method, path) == ("post", "/api/v1/packages")
            for status in ("401", "503"):
                assert "application/problem+json" in responses[status]["content"], (
                    method,
                    path,
                    status,
                )
            assert operation["security"], (method, path)


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/api/v1/no-such-thing"), ("DELETE", "/api/v1/packages"), ("PUT", "/api/v1/inbox")],
)
def test_routing_refusals_are_problems(served: Served, method: str, path: str) -> None:
    """Found: an unknown path or a wrong method under /api/v1 was FastAPI's
    `{"detail": …}` as application/json, the only errors of the API that were not
    problem+json; a 405 keeps its `Allow` header."""
    response = requests.request(
        method, served.url + path, timeout=10, headers={"Authorization": served.credentials.sender}
    )
    assert response.status_code in (404, 405)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == response.status_code and body["code"] in (
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
    )
    if response.status_code == 405:
        assert "POST" in response.headers["allow"] or "GET" in response.headers["allow"]


UNSTORABLE = ["a\x00b", "\ud800", "x\udfffy"]


@pytest.mark.parametrize("text", UNSTORABLE, ids=["nul", "surrogate", "low-surrogate"])
def test_text_no_database_can_hold_is_a_400_not_a_503(served: Served, text: str) -> None:
    """Found: on PostgreSQL a NUL anywhere in an id, filter or body (`/api/v1/packages/a%00b`,
    `?suffix=%00`, `{"message_id": "a\\u0000"}`) failed the statement like a lost
    connection and was answered 503 "database unreachable, retry"; on SQLite a lone
    surrogate (`"\\ud800"` in JSON) was an unhandled UnicodeEncodeError (500). Both are a
    400 now, on both backends, and nothing is written."""
    c = served.credentials
    system, operator = {"Authorization": c.sender}, {"Authorization": c.admin}
    body_only = "\x00" not in text  # a URL cannot carry a surrogate
    requests_to_make: list[tuple[str, str, dict[str, str], Any]] = [
        ("POST", "/api/v1/operator/cancel", operator, {"message_id": text, "reason": "r"}),
        (
            "POST",
            "/api/v1/operator/replay",
            operator,
            {"filter": {"sender": text}, "reason": "r", "dry_run": True},
        ),
    ]
    if not body_only:
        requests_to_make += [
            ("GET", f"/api/v1/packages/{text}", system, None),
            ("GET", f"/api/v1/inbox/{text}/content", system, None),
            ("GET", f"/api/v1/agencies?suffix={text}", system, None),
            ("GET", f"/api/v1/operator/messages?sender={text}", operator, None),
            ("GET", f"/api/v1/operator/messages/{text}", operator, None),
            ("POST", f"/api/v1/inbox/{text}/ack", system, {"status": "done"}),
        ]
    for method, path, headers, body in requests_to_make:
        offset = served.log_size()
        response = requests.request(
            method,
            served.url + path,
            timeout=10,
            data=None if body is None else json.dumps(body).encode(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (path, response.status_code, response.text)
        assert response.json()["code"] == "INVALID_REQUEST", response.text
        assert not errors_in(served.log_since(offset)), served.log_since(offset)
