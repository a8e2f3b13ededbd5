"""The REST API (`/api/v1`) for systems that can use something newer than the SDK (SPEC §4.2).

Bearer token = the system's credential. Errors are problem+json with a stable `code` and, for
package validation, the list of `{path, code, message}`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.api.deps import CurrentSystem, RuntimeDep
from gateway.errors import InvalidRequest, NotFound
from gateway.records import AcceptedMessage, DeliveryView, InboxItem
from gateway.services.submission import Submission
from gateway.spool import spool_body
from gateway.types import MessageKind, Sha256Hex

router = APIRouter(prefix="/api/v1", tags=["REST API v1"])

XML_BODY = {"requestBody": {"required": True, "content": {
    "application/xml": {"schema": {"type": "string", "format": "binary"}}}}}


class RecipientOut(BaseModel):
    code: str
    delivery_id: str
    state: str


class PackageAccepted(BaseModel):
    id: str = Field(description="Message id (what the SDK calls DocId)")
    received_at: datetime
    recipients: list[RecipientOut]
    duplicate: bool = Field(description="True when this answers an earlier submission with "
                                        "the same Idempotency-Key")


class TimelineOut(BaseModel):
    at: datetime
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None


class DeliveryOut(BaseModel):
    delivery_id: str
    to: str
    requested: str
    state: str
    state_changed_at: datetime
    available_at: datetime | None
    fail_count: int
    timeline: list[TimelineOut] = []


class PackageOut(BaseModel):
    id: str
    kind: MessageKind
    from_code: str
    document_id: str
    subject: str | None
    sent_at: datetime
    deliveries: list[DeliveryOut]


class InboxItemOut(BaseModel):
    delivery_id: str
    message_id: str
    kind: MessageKind
    from_code: str
    to_code: str
    document_id: str
    subject: str | None
    state: str
    new: bool
    created_at: datetime
    updated_at: datetime
    size: int


class InboxPage(BaseModel):
    items: list[InboxItemOut]
    next_cursor: str | None


class Acknowledgement(BaseModel):
    status: Literal["done", "fail"]
    reason: str | None = Field(default=None, max_length=2000)


class AgencyOut(BaseModel):
    code: str
    name: str
    parent_code: str | None
    mail: str | None
    status: str
    successor_code: str | None


def _accepted(accepted: AcceptedMessage) -> PackageAccepted:
    return PackageAccepted(
        id=accepted.message_id, received_at=accepted.received_at,
        duplicate=accepted.duplicate_of is not None,
        recipients=[RecipientOut(code=d.recipient_code, delivery_id=d.delivery_id,
                                 state=d.state) for d in accepted.deliveries])


@router.post("/packages", status_code=201, response_model=PackageAccepted,
             openapi_extra=XML_BODY, responses={200: {"description": "Idempotent replay"}})
async def submit_package(request: Request, runtime: RuntimeDep, system: CurrentSystem,
                         idempotency_key: Annotated[str | None, Header(max_length=200)] = None
                         ) -> JSONResponse:
    """Submit a raw edXML package (document or status). Send an `Idempotency-Key` to make
    retries safe: the same key returns the original answer and creates nothing."""
    body = await spool_body(request.stream(), runtime.settings.spool_dir,
                            runtime.settings.max_package_bytes, slack=0)
    accepted = await runtime.submit(Submission(system=system, body=body,
                                               idempotency_key=idempotency_key))
    answer = _accepted(accepted)
    return JSONResponse(answer.model_dump(mode="json"), status_code=200 if answer.duplicate
                        else 201, headers={"Location": f"/api/v1/packages/{answer.id}"})


def _delivery_out(view: DeliveryView) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=view.delivery_id, to=view.to_code, requested=view.requested_code,
        state=view.state, state_changed_at=view.state_changed_at,
        available_at=view.available_at, fail_count=view.fail_count,
        timeline=[TimelineOut(at=t.at, from_state=t.from_state, to_state=t.to_state,
                              actor=t.actor, reason=t.reason) for t in view.timeline])


@router.get("/packages/{message_id}", response_model=PackageOut)
async def get_package(message_id: str, runtime: RuntimeDep, system: CurrentSystem,
                      timeline: bool = False) -> PackageOut:
    """A package the caller sent, with every recipient's transport state (and timeline)."""
    views = await runtime.store.sent_deliveries(system.system_id, message_id,
                                                with_timeline=timeline)
    if not views:
        raise NotFound(f"no package {message_id} sent by {system.system_id}")
    first = views[0]
    return PackageOut(id=first.message_id, kind=first.kind, from_code=first.from_code,
                      document_id=first.document_id, subject=first.subject,
                      sent_at=first.sent_at, deliveries=[_delivery_out(v) for v in views])


@router.get("/packages/{message_id}/timeline", response_model=list[DeliveryOut])
async def get_timeline(message_id: str, runtime: RuntimeDep, system: CurrentSystem
                       ) -> list[DeliveryOut]:
    """Every transition of every recipient's delivery: where a package is, and since when."""
    return (await get_package(message_id, runtime, system, timeline=True)).deliveries


@router.get("/packages/{message_id}/original", response_class=Response)
async def get_original(message_id: str, runtime: RuntimeDep, system: CurrentSystem
                       ) -> Response:
    """The bytes exactly as the sender sent them (what an enveloped signature covers)."""
    sha256, _ = await runtime.store.message_payload(message_id, system.system_id)
    content = await asyncio.to_thread(runtime.payloads.read, Sha256Hex(sha256))
    return Response(content, media_type="application/xml")


def _item_out(item: InboxItem) -> InboxItemOut:
    return InboxItemOut(
        delivery_id=item.delivery_id, message_id=item.message_id, kind=item.kind,
        from_code=item.from_code, to_code=item.to_code, document_id=item.document_id,
        subject=item.subject, state=item.state, new=item.first_handout,
        created_at=item.created_at, updated_at=item.updated_at, size=item.payload_size)


def _cursor(value: str | None) -> int:
    if value is None:
        return 0
    if not value.isdigit():
        raise InvalidRequest(f"cursor {value!r} is not one this API returned")
    return int(value)


@router.get("/inbox", response_model=InboxPage)
async def list_inbox(runtime: RuntimeDep, system: CurrentSystem,
                     type: MessageKind = MessageKind.EDOC, cursor: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> InboxPage:
    """Pending items for the caller's agencies (read-only; `new` = never downloaded)."""
    items, next_cursor = await runtime.inbox.page(system, type, _cursor(cursor), limit)
    return InboxPage(items=[_item_out(i) for i in items],
                     next_cursor=str(next_cursor) if next_cursor is not None else None)


@router.post("/inbox/leases", response_model=list[InboxItemOut])
async def lease_inbox(runtime: RuntimeDep, system: CurrentSystem,
                      type: MessageKind = MessageKind.EDOC,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[InboxItemOut]:
    """Hand pending items to this worker only, for LIENTHONG_INBOX_LEASE_SECONDS: concurrent
    workers of one system never get the same item at the same time."""
    return [_item_out(i) for i in await runtime.inbox.lease(system, type, limit)]


@router.get("/inbox/{delivery_id}/content", response_class=Response)
async def download(delivery_id: str, runtime: RuntimeDep, system: CurrentSystem) -> Response:
    """The delivered copy: the original package plus this node's TraceHeader."""
    item, content = await runtime.inbox.download(system, delivery_id)
    return Response(content, media_type="application/xml",
                    headers={"X-Lienthong-Message-Id": item.message_id})


@router.post("/inbox/{delivery_id}/ack")
async def acknowledge(delivery_id: str, ack: Acknowledgement, runtime: RuntimeDep,
                      system: CurrentSystem) -> dict[str, str]:
    """`done`: stored, remove it from the inbox. `fail`: could not store it, offer it again."""
    state = await runtime.inbox.acknowledge(system, delivery_id, ack.status, ack.reason)
    return {"delivery_id": delivery_id, "state": state}


@router.get("/agencies", response_model=list[AgencyOut])
async def list_agencies(runtime: RuntimeDep, _system: CurrentSystem,
                        suffix: str | None = None) -> list[AgencyOut]:
    """The directory; `suffix=H53` lists one province (codes read right to left)."""
    return [AgencyOut(code=a.code, name=a.name, parent_code=a.parent_code, mail=a.mail,
                      status=a.status, successor_code=a.successor_code)
            for a in await runtime.store.list_agencies(suffix)]
