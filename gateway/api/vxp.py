"""The national-axis compatible API (`/vxp`), byte-compatible with the VNPT client SDK.

Every answer is HTTP 200 JSON `{"status", "ErrorCode", "ErrorDesc", …}` carrying every field
its operation's SDK method reads (`vxp_answers`), errors too (`gateway.api.errors`). The
`docId` a recipient sees is its delivery's id; the `DocId` a sender gets back is the message
id (SPEC §4.1). Directory operations live in `vxp_directory`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gateway.api.attachments import disposition
from gateway.api.deps import RuntimeDep
from gateway.api.receive import receive_body
from gateway.api.vxp_answers import SUCCESS, answer, entry, operation_of
from gateway.api.vxp_auth import VxpCall, authenticate
from gateway.api.vxp_params import inbox_filter, recipients_header
from gateway.delivery_states import DeliveryState
from gateway.errors import (
    ERROR_DESC_BUDGET,
    AcknowledgementInvalid,
    MessageTypeInvalid,
    ascii_safe,
    list_within,
)
from gateway.records import DeliveryView, InboxItem
from gateway.runtime import Runtime
from gateway.services.submission import Submission
from gateway.types import MessageKind

router = APIRouter(prefix="/vxp", tags=["national axis (vxp)"])
S = DeliveryState

WIRE_TIME = "%Y/%m/%d %H:%M:%S"
STATE_DESC: dict[DeliveryState, str] = {  # ASCII-safe Vietnamese, as the SDK prints it
    S.ACCEPTED: "Da tiep nhan",
    S.QUEUED: "Dang chuyen",
    S.AVAILABLE: "Cho nhan",
    S.DOWNLOADED: "Da tai ve",
    S.DONE: "Da nhan thanh cong",
    S.FAIL: "Nhan loi, gui lai",
    S.RETRYING: "Dang thu lai",
    S.DEAD: "Khong chuyen duoc",
    S.FORWARDED: "Da chuyen tiep",
    S.CANCELLED: "Da huy",
}
ACKNOWLEDGEMENTS = frozenset({"done", "fail", "processing"})
MAX_DESCRIPTION = 2000


def ok(operation: str, **fields: Any) -> JSONResponse:
    return JSONResponse(answer(operation, **fields))


async def _call(request: Request, runtime: Runtime) -> VxpCall:
    return await authenticate(
        request.headers, runtime.store, runtime.settings, operation_of(request.url.path)
    )


def _kind(call: VxpCall) -> MessageKind:
    value = (call.param("messagetype") or "edoc").lower()
    try:
        return MessageKind(value)
    except ValueError:
        raise MessageTypeInvalid(f"messagetype must be 'edoc' or 'status', not {value!r}") from None


def _wire_time(runtime: Runtime, at: datetime | None) -> str:
    return at.astimezone(ZoneInfo(runtime.settings.timezone)).strftime(WIRE_TIME) if at else ""


@router.post("/sendEdoc")
async def send_edoc(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Body: the raw .edxml (+ the SDK's CRLF); `hash-file` its SHA-256; optional `to`: the
    recipients of the package's To this send is for (how a node tells a peer which
    recipients are behind it)."""
    call = await _call(request, runtime)  # before reading the body: strangers spool nothing
    kind, sender, declared_hash = _kind(call), call.required("from"), call.required("hash-file")
    only_to = recipients_header(call.param("to"))
    body = await receive_body(request, runtime, call.system, declared_hash)
    accepted = await runtime.submit(
        Submission(
            system=call.system,
            body=body,
            declared_kind=kind,
            declared_from=sender,
            declared_to=only_to,
        )
    )
    receipt = answer("sendEdoc", DocId=accepted.message_id)
    if accepted.warnings:
        # ErrorDesc is all an SDK user sees: a merged recipient is named there (still OK).
        receipt["ErrorDesc"] = ascii_safe(
            f"{SUCCESS['ErrorDesc']}. Canh bao: "
            + list_within([f"{w.path}: {w.message}" for w in accepted.warnings], ERROR_DESC_BUDGET)
        )
    return JSONResponse(receipt)


@router.post("/getReceivedEdocList")
async def get_received_edoc_list(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Pending items, one per (package, recipient agency served by the caller); each is handed
    to one poller at a time (see `Inbox.lease`). Honours the filters clients send."""
    call = await _call(request, runtime)
    kind = _kind(call)
    only, page_size = inbox_filter(call, runtime.settings.timezone)
    async with runtime.inbox.turn():
        items = await runtime.inbox.lease(call.system, kind, page_size, only)
        return ok("getReceivedEdocList", data=[_received_entry(runtime, item) for item in items])


def _received_entry(runtime: Runtime, item: InboxItem) -> dict[str, Any]:
    return entry(
        "getReceivedEdocList",
        docId=item.delivery_id,
        serviceType="eDoc",
        messageType=item.kind.value,
        created_time=_wire_time(runtime, item.created_at),
        updated_time=_wire_time(runtime, item.updated_at),
        **{"from": item.from_code},
        to=item.to_code,
        status="new" if item.first_handout else "pending",
        status_desc="Van ban moi" if item.first_handout else "Chua xac nhan da nhan",
    )


@router.get("/getEdoc", operation_id="vxp_get_edoc_download_helper")
@router.post("/getEdoc")
async def get_edoc(request: Request, runtime: RuntimeDep) -> StreamingResponse:
    """`data` is the base64 of the delivered package, streamed: a 100 MiB package never sits
    in memory. The SDK posts; its download helper uses GET with the same signed headers."""
    call = await _call(request, runtime)
    download = await runtime.inbox.download(call.system, call.required("docId", "docid"))
    prefix = json.dumps({**SUCCESS, "data": ""})[:-2].encode()  # ... "data": "
    length = len(prefix) + 4 * math.ceil(download.size / 3) + 2
    return StreamingResponse(
        base64_json(prefix, download.chunks),
        media_type="application/json",
        headers={"Content-Length": str(length)},
    )


def base64_json(prefix: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`prefix` + base64 of the chunks + `"}`, encoding 3-byte groups as they come."""
    yield prefix
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        cut = len(data) - len(data) % 3
        yield base64.b64encode(data[:cut])
        rest = data[cut:]
    yield base64.b64encode(rest) + b'"}'


@router.get("/downloadEdoc")
async def download_edoc(request: Request, runtime: RuntimeDep) -> Response:
    """SDK 2.0.1's download: the raw delivered .edxml as the body. The SDK saves any
    non-empty body as the document, so errors are HTTP statuses with an empty body and the
    reason in response headers (see `gateway.api.errors`)."""
    call = await _call(request, runtime)
    download = await runtime.inbox.download(call.system, call.required("docId", "docid"))
    return StreamingResponse(
        download.chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(download.size),
            **disposition(f"{download.item.delivery_id}.edxml"),
        },
    )


@router.post("/updateStatus")
async def update_status(request: Request, runtime: RuntimeDep) -> JSONResponse:
    call = await _call(request, runtime)
    outcome = call.required("status").lower()
    if outcome not in ACKNOWLEDGEMENTS:
        raise AcknowledgementInvalid(f"status must be done, fail or processing, not {outcome!r}")
    description = (call.param("description") or "").strip()[:MAX_DESCRIPTION] or None
    await runtime.inbox.acknowledge(
        call.system, call.required("docid", "docId"), outcome, description
    )
    return ok("updateStatus")


@router.post("/countReceiveEdoc")
async def count_receive_edoc(request: Request, runtime: RuntimeDep) -> JSONResponse:
    call = await _call(request, runtime)
    return ok("countReceiveEdoc", count=await runtime.inbox.count(call.system, MessageKind.EDOC))


@router.post("/countReceiveStatus")
async def count_receive_status(request: Request, runtime: RuntimeDep) -> JSONResponse:
    call = await _call(request, runtime)
    return ok(
        "countReceiveStatus", count=await runtime.inbox.count(call.system, MessageKind.STATUS)
    )


@router.post("/getSentEdocList")
async def get_sent_edoc_list(request: Request, runtime: RuntimeDep) -> JSONResponse:
    call = await _call(request, runtime)
    views = await runtime.store.sent_deliveries(
        call.system.system_id, call.param("docId", "docid") or None
    )
    return ok("getSentEdocList", data=[_sent_entry(runtime, view) for view in views])


def _sent_entry(runtime: Runtime, view: DeliveryView) -> dict[str, Any]:
    notation = "/".join(p for p in (view.code_number, view.code_notation) if p)
    return entry(
        "getSentEdocList",
        serviceType="eDoc",
        messageType=view.kind.value,
        senderDocId=view.message_id,
        receiverDocId=view.delivery_id,
        fromCode=view.from_code,
        toCode=view.to_code,
        title=view.subject,
        notation=notation,
        sentTime=_wire_time(runtime, view.sent_at),
        receivedTime=_wire_time(runtime, view.available_at),
        sendStatus=view.state,
        sendStatusDesc=sent_state_desc(view),
        receiveStatus=view.business_status,
        receiveStatusDesc=ascii_safe(view.business_status_desc or "")
        if view.business_status
        else "",
        receiveStatusTime=_wire_time(runtime, view.business_status_at),
    )


def sent_state_desc(view: DeliveryView) -> str:
    """The state in words; for a forwarded delivery also which peer has it and how far it
    got there (the SDK shows only this text, so the hop is said here)."""
    text = STATE_DESC[DeliveryState(view.state)]
    if view.peer is None:
        return text
    there = f"; tai do: {view.downstream_state}" if view.downstream_state else ""
    return ascii_safe(f"{text} ({view.peer}{there})")
