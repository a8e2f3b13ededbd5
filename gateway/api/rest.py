"""The REST API (`/api/v1`) for systems that can use something newer than the SDK (SPEC §4.2).

Bearer token = the system's credential. Errors are problem+json with a stable `code` and, for
package validation, the list of `{path, code, message}`.

This module holds the JSON shapes of its answers and bodies (their schema names in the
OpenAPI document derive from it); the routes are one router per resource: `packages`
(submit, metadata, timeline, original, attachments), `inbox` (list, leases, content,
acknowledgements), `agencies` (the directory).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.types import MessageKind

PREFIX = "/api/v1"
TAG = "REST API v1"
"""Every resource router's prefix and OpenAPI tag."""


class RecipientOut(BaseModel):
    code: str
    delivery_id: str
    state: str


class PackageAccepted(BaseModel):
    id: str = Field(description="Message id (what the SDK calls DocId)")
    received_at: datetime
    recipients: list[RecipientOut]
    duplicate: bool = Field(
        description="True when this answers an earlier submission with the same Idempotency-Key"
    )
    warnings: list[ProblemOut] = Field(
        default_factory=list,
        description="Recipients merged into a successor (RECIPIENT_MERGED): the package goes "
        "to the successor instead",
    )


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
    route: str = Field("inbox", description="inbox (polled), push, or peer (forwarded)")
    peer: str | None = Field(None, description="The peer node a forwarded delivery went to")
    peer_doc_id: str | None = Field(None, description="The DocId the peer gave it")
    downstream_state: str | None = Field(
        None, description="How far it got behind the peer (the peer's transport state)"
    )
    downstream_at: datetime | None = None
    business_status: BusinessStatusOut | None = Field(
        None, description="The latest business status this recipient sent back"
    )
    timeline: list[TimelineOut] = []


class AttachmentOut(BaseModel):
    position: int = Field(description="1-based index, as in AttachmentEncoded")
    content_id: str
    name: str | None = Field(description="AttachmentName: the original file name")
    description: str | None
    content_type: str | None
    size: int
    sha256: str
    zipped: bool = Field(
        description="Sent zipped (application/zip) under its original "
        "name; ?unzip=true downloads the original file"
    )
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
    signature: dict[str, Any] | None = Field(
        description="Verification report: outcome "
        "(valid, invalid, absent, unverifiable, "
        "not-checked), code, reason, signer, chain…"
    )
    warnings: list[ProblemOut]
    attachments: list[AttachmentOut]
    links: list[LinkOut]
    deliveries: list[DeliveryOut] = Field(
        description="All of them for the sender, the caller's own for a recipient"
    )


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
