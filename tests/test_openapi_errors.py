"""The OpenAPI document says how to authenticate and every error each `/api/v1` operation
answers (`gateway/api/openapi.py`): the security schemes with their credential formats, and
per operation each status with the stable problem `code`s it carries there. Real refusals are
checked against it: the status and the code are the ones documented for that operation."""

from __future__ import annotations

from typing import Any

import httpx

import gateway.errors as errors
from gateway.api.app import create_app
from gateway.api.openapi import ERRORS
from gateway.settings import Settings
from tests.support.nodes import Node
from tests.support.operators import add_operator
from tests.support.samples import document

DOC = create_app(Settings(environment="test")).openapi()
SENDER, RECEIVER = "000.00.01.H53", "000.00.02.H53"


def codes(method: str, path: str, status: int) -> list[str]:
    """The problem codes `/openapi.json` lists for this operation's `status`."""
    response = DOC["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/problem+json"]["schema"]
    assert schema["allOf"][0] == {"$ref": "#/components/schemas/Problem"}
    enum: list[str] = schema["allOf"][1]["properties"]["code"]["enum"]
    for code in enum:  # each code is explained in the description
        assert f"`{code}`" in response["description"], (path, status, code)
    return enum


def documented(method: str, path: str, response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] in codes(method, path, response.status_code), (
        method,
        path,
        response.status_code,
        response.text,
    )


def api_operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in DOC["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in operations.items()
    ]


def test_the_security_schemes_say_what_to_send() -> None:
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["systemBearer"]["scheme"] == "bearer"
    assert "Bearer <systemId>:<secret>" in schemes["systemBearer"]["description"]
    assert "Bearer <operator>:<token>" in schemes["operatorBearer"]["description"]
    for _method, path, operation in api_operations():
        (requirement,) = operation["security"]
        (scheme,) = requirement
        operator = path.startswith("/api/v1/operator")
        assert scheme == ("operatorBearer" if operator else "systemBearer"), path


def test_every_operation_lists_every_error_it_can_answer() -> None:
    for method, path, operation in api_operations():
        statuses = {int(s) for s in operation["responses"] if int(s) >= 400}
        assert {401, 408, 431, 500, 503} <= statuses, (method, path)
        assert codes(method, path, 401) == ["AUTH_FAILED"]
        operator = path.startswith("/api/v1/operator")
        if not operator:
            assert "SYSTEM_DISABLED" in codes(method, path, 403), path
        elif method == "post":
            assert codes(method, path, 403) == ["PERMISSION_DENIED"], path
        else:
            assert 403 not in statuses, path  # reading is every operator's
        if "{" in path:
            assert codes(method, path, 404) == ["NOT_FOUND"]
        if operation.get("parameters") or operation.get("requestBody"):
            assert codes(method, path, 400) == ["INVALID_REQUEST"]
        body = operation.get("requestBody", {}).get("content", {})
        if "application/json" in body:
            assert codes(method, path, 413) == ["REQUEST_TOO_LARGE"]
            assert codes(method, path, 415) == ["UNSUPPORTED_MEDIA_TYPE"]
    submit = ("post", "/api/v1/packages")
    assert codes(*submit, 422) == [
        "PACKAGE_INVALID",
        "SIGNATURE_REJECTED",
        "RECIPIENT_UNKNOWN",
        "RECIPIENT_CLOSED",
        "RECIPIENT_LOCKED",
    ]
    assert codes(*submit, 403) == ["SYSTEM_DISABLED", "PERMISSION_DENIED"]
    assert codes(*submit, 409) == ["DUPLICATE_DOCUMENT"]
    assert codes(*submit, 413) == ["PACKAGE_TOO_LARGE"]
    assert codes(*submit, 429) == ["TOO_MANY_UPLOADS"]
    responses = DOC["paths"]["/api/v1/packages"]["post"]["responses"]
    assert "Retry-After" in responses["429"]["headers"]


async def test_every_refusal_category_is_in_the_table() -> None:
    """A new category of `gateway/errors.py` must be documented (or be `/vxp`-only)."""

    def categories(base: type[errors.GatewayError]) -> list[type[errors.GatewayError]]:
        found: list[type[errors.GatewayError]] = []
        for sub in base.__subclasses__():
            if sub.__module__ == errors.__name__:
                found += [sub, *categories(sub)]
        return found

    vxp_only = {"BODY_HASH_MISMATCH"}
    for category in categories(errors.GatewayError):
        if category.code in vxp_only:
            continue
        assert category.code in ERRORS[category.http_status][1], category


async def test_real_refusals_are_the_documented_ones(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    auditor = await add_operator(node, "audrey", "auditor")
    http, system = node.http, node.rest_headers(sender)
    xml = {**system, "Content-Type": "application/xml"}

    documented("get", "/api/v1/inbox", await http.get("/api/v1/inbox"))  # 401
    documented(
        "get",
        "/api/v1/packages/{message_id}",
        await http.get("/api/v1/packages/nothing", headers=system),
    )  # 404
    documented(
        "post",
        "/api/v1/packages",
        await http.post("/api/v1/packages", content=b"<x/>", headers=xml),
    )  # 422
    big = b'{"status": "done", "reason": "' + b"x" * 70_000 + b'"}'
    ack = "/api/v1/inbox/{delivery_id}/ack"
    json_body = {**system, "Content-Type": "application/json"}
    documented("post", ack, await http.post("/api/v1/inbox/d/ack", content=big, headers=json_body))
    documented(
        "post",
        ack,
        await http.post(
            "/api/v1/inbox/d/ack", content=b"done", headers={**system, "Content-Type": "text/plain"}
        ),
    )  # 415
    replay = await http.post(
        "/api/v1/operator/replay", json={"message_id": "m", "reason": "r"}, headers=auditor
    )
    documented("post", "/api/v1/operator/replay", replay)  # 403 PERMISSION_DENIED

    await node.runtime.store.set_system_enabled("sys.receiver", False)
    locked = await http.post("/api/v1/packages", content=document(SENDER, [RECEIVER]), headers=xml)
    assert locked.json()["code"] == "RECIPIENT_LOCKED"
    documented("post", "/api/v1/packages", locked)
    disabled = await http.get("/api/v1/inbox", headers=node.rest_headers(receiver))
    assert disabled.json()["code"] == "SYSTEM_DISABLED"
    documented("get", "/api/v1/inbox", disabled)
