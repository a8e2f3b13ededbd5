"""The REST API (`/api/v1`) for systems that can use something newer than the SDK (SPEC §4.2).

Bearer token = the system's credential. Errors are problem+json with a stable `code` and, for
package validation, the list of `{path, code, message}`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from mimetypes import guess_type
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from gateway.api.attachments import (
    disposition,
    is_zipped_original,
    single_member,
    unzipped_chunks,
)
from gateway.api.body_headers import PACKAGE_MEDIA_TYPES
from gateway.api.deps import CurrentSystem, RuntimeDep
from gateway.api.json_body import json_body_doc, read_json
from gateway.api.pagination import next_cursor, parse_cursor
from gateway.api.receive import receive_body
from gateway.delivery_states import Part, may_read
from gateway.errors import InvalidRequest, NotFound
from gateway.records import AcceptedMessage, DeliveryView, InboxItem
from gateway.services.submission import Submission
from gateway.types import MessageKind, Sha256Hex

router = APIRouter(prefix="/api/v1", tags=["REST API v1"])

XML_BODY = {"requestBody": {"required": True, "content": {
    media_type: {"schema": {"type": "string", "format": "binary"}}
    for media_type in PACKAGE_MEDIA_TYPES}}}
"""The raw .edxml file as the body, with any of these Content-Types (or none)."""


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


class BusinessStatusOut(BaseModel):
    code: str = Field(description="01 arrived … 06 completed, 15/16 recall answers")
    at: datetime
    description: str | None


class DeliveryOut(BaseModel):
    delivery_id: str
    to: str
    requested: str
    state: str
    state_changed_at: datetime
    available_at: datetime | None
    fail_count: int
    business_status: BusinessStatusOut | None = Field(
        None, description="The latest business status this recipient sent back")
    timeline: list[TimelineOut] = []


class AttachmentOut(BaseModel):
    position: int = Field(description="1-based index, as in AttachmentEncoded")
    content_id: str
    name: str | None = Field(description="AttachmentName: the original file name")
    description: str | None
    content_type: str | None
    size: int
    sha256: str
    zipped: bool = Field(description="Sent zipped (application/zip) under its original "
                                     "name; ?unzip=true downloads the original file")
    url: str


class LinkOut(BaseModel):
    relation: Literal["revokes", "updates", "replaces", "answers"]
    target_document_id: str
    target_package_id: str | None


class ProblemOut(BaseModel):
    code: str
    path: str
    message: str
    severity: str


class PackageOut(BaseModel):
    id: str
    kind: MessageKind
    from_code: str
    document_id: str
    code_number: str | None
    code_notation: str | None
    subject: str | None
    business_type: int = Field(description="0 new, 1 revoke, 2 update, 3 replace")
    status_code: str | None
    signed: bool
    paper: int | None = Field(description="1 when a paper copy is also sent")
    sent_at: datetime
    size: int
    sha256: str
    header: dict[str, Any] | None = Field(description="MessageHeader, typed, as read")
    business: dict[str, Any] | None = Field(description="TraceHeaderList/Bussiness, typed")
    traces: list[dict[str, Any]] = Field(description="TraceHeaders as received")
    signature: dict[str, Any] | None = Field(description="Verification report: outcome "
                                             "(valid, invalid, absent, unverifiable, "
                                             "not-checked), code, reason, signer, chain…")
    warnings: list[ProblemOut]
    attachments: list[AttachmentOut]
    links: list[LinkOut]
    deliveries: list[DeliveryOut] = Field(description="All of them for the sender, the "
                                                      "caller's own for a recipient")


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
    body = await receive_body(request, runtime, system)
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
        business_status=BusinessStatusOut(code=view.business_status,
                                          at=view.business_status_at,
                                          description=view.business_status_desc)
        if view.business_status and view.business_status_at else None,
        timeline=[TimelineOut(at=t.at, from_state=t.from_state, to_state=t.to_state,
                              actor=t.actor, reason=t.reason) for t in view.timeline])


@router.get("/packages/{message_id}", response_model=PackageOut)
async def get_package(message_id: str, runtime: RuntimeDep, system: CurrentSystem
                      ) -> PackageOut:
    """Metadata of a package the caller sent or receives: the typed header, warnings,
    attachments (name, type, size, SHA-256), business links and delivery states."""
    view = await runtime.store.message_view(message_id, system.system_id)
    base = f"/api/v1/packages/{view.message_id}/attachments"
    return PackageOut(
        id=view.message_id, kind=view.kind, from_code=view.from_code,
        document_id=view.document_id, code_number=view.code_number,
        code_notation=view.code_notation, subject=view.subject,
        business_type=view.business_type, status_code=view.status_code, signed=view.signed,
        paper=view.paper, sent_at=view.received_at, size=view.payload_size,
        sha256=view.payload_sha256, header=(view.header or {}).get("header"),
        business=(view.header or {}).get("business"),
        traces=(view.header or {}).get("traces", []), signature=view.signature,
        warnings=[ProblemOut(**w) for w in view.warnings],
        attachments=[AttachmentOut(
            position=a.position, content_id=a.content_id, name=a.name,
            description=a.description, content_type=a.content_type, size=a.size,
            sha256=a.sha256, zipped=is_zipped_original(a.content_type, a.name),
            url=f"{base}/{a.position}") for a in view.attachments],
        links=[LinkOut(relation=link.relation,  # type: ignore[arg-type]
                       target_document_id=link.target_document_id,
                       target_package_id=link.target_message_id) for link in view.links],
        deliveries=[_delivery_out(d) for d in view.deliveries])


@router.get("/packages/{message_id}/timeline", response_model=list[DeliveryOut])
async def get_timeline(message_id: str, runtime: RuntimeDep, system: CurrentSystem
                       ) -> list[DeliveryOut]:
    """Every transition of every recipient's delivery: where a package is, and since when."""
    views = await runtime.store.sent_deliveries(system.system_id, message_id,
                                                with_timeline=True)
    if not views:
        raise NotFound(f"no package {message_id} sent by {system.system_id}")
    return [_delivery_out(v) for v in views]


@router.get("/packages/{message_id}/original", response_class=FileResponse)
async def get_original(message_id: str, runtime: RuntimeDep, system: CurrentSystem
                       ) -> FileResponse:
    """The bytes exactly as the sender sent them (what an enveloped signature covers)."""
    sha256, _ = await runtime.store.message_payload(message_id, system.system_id)
    return FileResponse(runtime.payloads.path_of(Sha256Hex(sha256)),
                        media_type="application/xml")


@router.get("/packages/{message_id}/attachments/{position}", response_class=Response)
async def get_attachment(message_id: str, position: int, runtime: RuntimeDep,
                         system: CurrentSystem, unzip: bool = False) -> Response:
    """One attachment, bytes exactly as sent. `unzip=true` on an attachment sent zipped under
    its original name gives the file inside, under that name."""
    view = await runtime.store.message_view(message_id, system.system_id)
    if not may_read(Part.ATTACHMENTS, is_sender=view.is_sender,
                    recipient_states=[d.state for d in view.deliveries]):
        raise NotFound(f"no package {message_id} visible to {system.system_id}")
    attachment = next((a for a in view.attachments if a.position == position), None)
    if attachment is None:
        raise NotFound(f"package {message_id} has no attachment {position}")
    path = runtime.payloads.path_of(Sha256Hex(attachment.sha256))
    name = attachment.name or f"attachment-{position}"
    if not unzip:
        return FileResponse(path, media_type=attachment.content_type or
                            "application/octet-stream", headers=disposition(name))
    if not is_zipped_original(attachment.content_type, attachment.name):
        raise InvalidRequest(f"attachment {position} was not sent zipped")
    member = await asyncio.to_thread(single_member, path, runtime.settings.max_unzipped_bytes)
    return StreamingResponse(unzipped_chunks(path, member), headers=disposition(name),
                             media_type=guess_type(name)[0] or "application/octet-stream")


def _item_out(item: InboxItem) -> InboxItemOut:
    return InboxItemOut(
        delivery_id=item.delivery_id, message_id=item.message_id, kind=item.kind,
        from_code=item.from_code, to_code=item.to_code, document_id=item.document_id,
        subject=item.subject, state=item.state, new=item.first_handout,
        created_at=item.created_at, updated_at=item.updated_at, size=item.payload_size)


@router.get("/inbox", response_model=InboxPage)
async def list_inbox(runtime: RuntimeDep, system: CurrentSystem,
                     type: MessageKind = MessageKind.EDOC, cursor: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> InboxPage:
    """Pending items for the caller's agencies (read-only; `new` = never downloaded)."""
    scope = f"inbox|{system.system_id}|{type.value}"
    items, position = await runtime.inbox.page(system, type,
                                               parse_cursor(runtime, scope, cursor), limit)
    return InboxPage(items=[_item_out(i) for i in items],
                     next_cursor=next_cursor(runtime, scope, position))


@router.post("/inbox/leases", response_model=list[InboxItemOut])
async def lease_inbox(runtime: RuntimeDep, system: CurrentSystem,
                      type: MessageKind = MessageKind.EDOC,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[InboxItemOut]:
    """Hand pending items to this worker only, for LIENTHONG_INBOX_LEASE_SECONDS: concurrent
    workers of one system never get the same item at the same time."""
    return [_item_out(i) for i in await runtime.inbox.lease(system, type, limit)]


@router.get("/inbox/{delivery_id}/content", response_class=StreamingResponse)
async def download(delivery_id: str, runtime: RuntimeDep, system: CurrentSystem
                   ) -> StreamingResponse:
    """The delivered copy (streamed): the original package plus this node's TraceHeader."""
    download = await runtime.inbox.download(system, delivery_id)
    return StreamingResponse(download.chunks, media_type="application/xml", headers={
        "X-Lienthong-Message-Id": download.item.message_id,
        "Content-Length": str(download.size)})


@router.post("/inbox/{delivery_id}/ack", openapi_extra=json_body_doc(Acknowledgement))
async def acknowledge(delivery_id: str, request: Request, runtime: RuntimeDep,
                      system: CurrentSystem) -> dict[str, str]:
    """`done`: stored, remove it from the inbox. `fail`: could not store it, offer it again.
    Body: `Acknowledgement` (read after authentication, LIENTHONG_MAX_JSON_BODY_BYTES)."""
    ack = await read_json(request, Acknowledgement, runtime.settings.max_json_body_bytes)
    state = await runtime.inbox.acknowledge(system, delivery_id, ack.status, ack.reason)
    return {"delivery_id": delivery_id, "state": state}


@router.get("/agencies", response_model=list[AgencyOut])
async def list_agencies(runtime: RuntimeDep, _system: CurrentSystem,
                        suffix: str | None = None) -> list[AgencyOut]:
    """The directory; `suffix=H53` lists one province (codes read right to left)."""
    return [AgencyOut(code=a.code, name=a.name, parent_code=a.parent_code, mail=a.mail,
                      status=a.status, successor_code=a.successor_code)
            for a in await runtime.store.list_agencies(suffix)]
