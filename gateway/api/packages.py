"""`/api/v1/packages`: submit a package; read its metadata, timeline, original bytes and
attachments."""

from __future__ import annotations

import asyncio
from mimetypes import guess_type
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from gateway.api.attachments import (
    disposition,
    is_zipped_original,
    single_member,
    unzipped_chunks,
)
from gateway.api.body_headers import PACKAGE_MEDIA_TYPES
from gateway.api.deps import CurrentSystem, RuntimeDep
from gateway.api.receive import receive_body
from gateway.api.rest import (
    PREFIX,
    TAG,
    AttachmentOut,
    BusinessStatusOut,
    DeliveryOut,
    LinkOut,
    PackageAccepted,
    PackageOut,
    ProblemOut,
    RecipientOut,
    TimelineOut,
)
from gateway.delivery_states import Part, may_read
from gateway.errors import InvalidRequest, NotFound
from gateway.records import AcceptedMessage, DeliveryView
from gateway.services.submission import Submission
from gateway.types import Sha256Hex

router = APIRouter(prefix=PREFIX, tags=[TAG])

XML_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in PACKAGE_MEDIA_TYPES
        },
    }
}
"""The raw .edxml file as the body, with any of these Content-Types (or none)."""


def _accepted(accepted: AcceptedMessage) -> PackageAccepted:
    return PackageAccepted(
        id=accepted.message_id,
        received_at=accepted.received_at,
        duplicate=accepted.duplicate_of is not None,
        recipients=[
            RecipientOut(code=d.recipient_code, delivery_id=d.delivery_id, state=d.state)
            for d in accepted.deliveries
        ],
        warnings=[ProblemOut(**w.as_dict()) for w in accepted.warnings],
    )


@router.post(
    "/packages",
    status_code=201,
    response_model=PackageAccepted,
    openapi_extra=XML_BODY,
    responses={200: {"description": "Idempotent replay"}},
)
async def submit_package(
    request: Request,
    runtime: RuntimeDep,
    system: CurrentSystem,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Submit a raw edXML package (document or status). Send an `Idempotency-Key` to make
    retries safe: the same key returns the original answer and creates nothing."""
    body = await receive_body(request, runtime, system)
    accepted = await runtime.submit(
        Submission(system=system, body=body, idempotency_key=idempotency_key)
    )
    answer = _accepted(accepted)
    return JSONResponse(
        answer.model_dump(mode="json"),
        status_code=200 if answer.duplicate else 201,
        headers={"Location": f"/api/v1/packages/{answer.id}"},
    )


def _delivery_out(view: DeliveryView) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=view.delivery_id,
        to=view.to_code,
        requested=view.requested_code,
        state=view.state,
        state_changed_at=view.state_changed_at,
        available_at=view.available_at,
        fail_count=view.fail_count,
        route=view.route,
        peer=view.peer,
        peer_doc_id=view.peer_doc_id,
        downstream_state=view.downstream_state,
        downstream_at=view.downstream_at,
        business_status=BusinessStatusOut(
            code=view.business_status,
            at=view.business_status_at,
            description=view.business_status_desc,
        )
        if view.business_status and view.business_status_at
        else None,
        timeline=[
            TimelineOut(
                at=t.at,
                from_state=t.from_state,
                to_state=t.to_state,
                actor=t.actor,
                reason=t.reason,
            )
            for t in view.timeline
        ],
    )


@router.get("/packages/{message_id}", response_model=PackageOut)
async def get_package(message_id: str, runtime: RuntimeDep, system: CurrentSystem) -> PackageOut:
    """Metadata of a package the caller sent or receives: the typed header, warnings,
    attachments (name, type, size, SHA-256), business links and delivery states."""
    view = await runtime.store.message_view(message_id, system.system_id)
    base = f"/api/v1/packages/{view.message_id}/attachments"
    return PackageOut(
        id=view.message_id,
        kind=view.kind,
        from_code=view.from_code,
        document_id=view.document_id,
        code_number=view.code_number,
        code_notation=view.code_notation,
        subject=view.subject,
        business_type=view.business_type,
        status_code=view.status_code,
        signed=view.signed,
        paper=view.paper,
        sent_at=view.received_at,
        size=view.payload_size,
        sha256=view.payload_sha256,
        header=(view.header or {}).get("header"),
        business=(view.header or {}).get("business"),
        traces=(view.header or {}).get("traces", []),
        signature=view.signature,
        warnings=[ProblemOut(**w) for w in view.warnings],
        attachments=[
            AttachmentOut(
                position=a.position,
                content_id=a.content_id,
                name=a.name,
                description=a.description,
                content_type=a.content_type,
                size=a.size,
                sha256=a.sha256,
                zipped=is_zipped_original(a.content_type, a.name),
                url=f"{base}/{a.position}",
            )
            for a in view.attachments
        ],
        links=[
            LinkOut(
                relation=link.relation,  # type: ignore[arg-type]
                target_document_id=link.target_document_id,
                target_package_id=link.target_message_id,
            )
            for link in view.links
        ],
        deliveries=[_delivery_out(d) for d in view.deliveries],
    )


@router.get("/packages/{message_id}/timeline", response_model=list[DeliveryOut])
async def get_timeline(
    message_id: str, runtime: RuntimeDep, system: CurrentSystem
) -> list[DeliveryOut]:
    """Every transition of every recipient's delivery: where a package is, and since when."""
    views = await runtime.store.sent_deliveries(system.system_id, message_id, with_timeline=True)
    if not views:
        raise NotFound(f"no package {message_id} sent by {system.system_id}")
    return [_delivery_out(v) for v in views]


@router.get("/packages/{message_id}/original", response_class=FileResponse)
async def get_original(message_id: str, runtime: RuntimeDep, system: CurrentSystem) -> FileResponse:
    """The bytes exactly as the sender sent them (what an enveloped signature covers)."""
    sha256, _ = await runtime.store.message_payload(message_id, system.system_id)
    return FileResponse(runtime.payloads.path_of(Sha256Hex(sha256)), media_type="application/xml")


@router.get("/packages/{message_id}/attachments/{position}", response_class=Response)
async def get_attachment(
    message_id: str, position: int, runtime: RuntimeDep, system: CurrentSystem, unzip: bool = False
) -> Response:
    """One attachment, bytes exactly as sent. `unzip=true` on an attachment sent zipped under
    its original name gives the file inside, under that name."""
    view = await runtime.store.message_view(message_id, system.system_id)
    if not may_read(
        Part.ATTACHMENTS,
        is_sender=view.is_sender,
        recipient_states=[d.state for d in view.deliveries],
    ):
        raise NotFound(f"no package {message_id} visible to {system.system_id}")
    attachment = next((a for a in view.attachments if a.position == position), None)
    if attachment is None:
        raise NotFound(f"package {message_id} has no attachment {position}")
    path = runtime.payloads.path_of(Sha256Hex(attachment.sha256))
    name = attachment.name or f"attachment-{position}"
    if not unzip:
        return FileResponse(
            path,
            media_type=attachment.content_type or "application/octet-stream",
            headers=disposition(name),
        )
    if not is_zipped_original(attachment.content_type, attachment.name):
        raise InvalidRequest(f"attachment {position} was not sent zipped")
    member = await asyncio.to_thread(single_member, path, runtime.settings.max_unzipped_bytes)
    return StreamingResponse(
        unzipped_chunks(path, member),
        headers=disposition(name),
        media_type=guess_type(name)[0] or "application/octet-stream",
    )
