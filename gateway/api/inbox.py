"""`/api/v1/inbox`: what the caller's agencies have to collect; leases, downloads and
acknowledgements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from gateway.api.deps import CurrentSystem, RuntimeDep
from gateway.api.json_body import json_body_doc, read_json
from gateway.api.pagination import next_cursor, parse_cursor
from gateway.api.rest import PREFIX, TAG, Acknowledgement, InboxItemOut, InboxPage
from gateway.records import InboxItem
from gateway.types import MessageKind

router = APIRouter(prefix=PREFIX, tags=[TAG])


def _item_out(item: InboxItem) -> InboxItemOut:
    return InboxItemOut(
        delivery_id=item.delivery_id,
        message_id=item.message_id,
        kind=item.kind,
        from_code=item.from_code,
        to_code=item.to_code,
        document_id=item.document_id,
        subject=item.subject,
        state=item.state,
        new=item.first_handout,
        created_at=item.created_at,
        updated_at=item.updated_at,
        size=item.payload_size,
    )


@router.get("/inbox", response_model=InboxPage)
async def list_inbox(
    runtime: RuntimeDep,
    system: CurrentSystem,
    type: MessageKind = MessageKind.EDOC,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> InboxPage:
    """Pending items for the caller's agencies (read-only; `new` = never downloaded)."""
    scope = f"inbox|{system.system_id}|{type.value}"
    after = parse_cursor(runtime, scope, cursor)
    async with runtime.inbox.turn():
        items, position = await runtime.inbox.page(system, type, after, limit)
        return InboxPage(
            items=[_item_out(i) for i in items], next_cursor=next_cursor(runtime, scope, position)
        )


@router.post("/inbox/leases", response_model=list[InboxItemOut])
async def lease_inbox(
    runtime: RuntimeDep,
    system: CurrentSystem,
    type: MessageKind = MessageKind.EDOC,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[InboxItemOut]:
    """Hand pending items to this worker only, for LIENTHONG_INBOX_LEASE_SECONDS: concurrent
    workers of one system never get the same item at the same time."""
    async with runtime.inbox.turn():
        return [_item_out(i) for i in await runtime.inbox.lease(system, type, limit)]


@router.get("/inbox/{delivery_id}/content", response_class=StreamingResponse)
async def download(
    delivery_id: str, runtime: RuntimeDep, system: CurrentSystem
) -> StreamingResponse:
    """The delivered copy (streamed): the original package plus this node's TraceHeader."""
    download = await runtime.inbox.download(system, delivery_id)
    return StreamingResponse(
        download.chunks,
        media_type="application/xml",
        headers={
            "X-Lienthong-Message-Id": download.item.message_id,
            "Content-Length": str(download.size),
        },
    )


@router.post("/inbox/{delivery_id}/ack", openapi_extra=json_body_doc(Acknowledgement))
async def acknowledge(
    delivery_id: str, request: Request, runtime: RuntimeDep, system: CurrentSystem
) -> dict[str, str]:
    """`done`: stored, remove it from the inbox. `fail`: could not store it, offer it again.
    Body: `Acknowledgement` (read after authentication, LIENTHONG_MAX_JSON_BODY_BYTES)."""
    ack = await read_json(request, Acknowledgement, runtime.settings.max_json_body_bytes)
    state = await runtime.inbox.acknowledge(system, delivery_id, ack.status, ack.reason)
    return {"delivery_id": delivery_id, "state": state}
