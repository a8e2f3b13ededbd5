"""Receive → validate → accept: the path of a package from a sender into the database.

Only after the accepting transaction commits does the sender get an id; the relay is woken
to publish, but nothing depends on that happening now (the outbox keeps the work).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from gateway.edxml.parser import ParsedPackage, parse_package
from gateway.errors import DuplicatePackage, PackageRejected, PermissionDenied, Problem
from gateway.ports import Store
from gateway.records import AcceptedMessage, NewMessage, SystemRecord
from gateway.routing import plan_recipients
from gateway.settings import Settings
from gateway.spool import SpooledBody
from gateway.types import MessageKind, PayloadStore


@dataclass(frozen=True, slots=True)
class Submission:
    system: SystemRecord
    body: SpooledBody
    declared_kind: MessageKind | None = None
    declared_from: str | None = None
    """The SDK's `from` header: must equal the package's From/OrganId when given."""
    idempotency_key: str | None = None


class SubmitPackage:
    def __init__(self, settings: Settings, store: Store, payloads: PayloadStore,
                 on_accepted: Callable[[], None]) -> None:
        self._settings = settings
        self._store = store
        self._payloads = payloads
        self._on_accepted = on_accepted

    async def __call__(self, submission: Submission) -> AcceptedMessage:
        try:
            package = await asyncio.to_thread(parse_package, submission.body.path)
            self._check_sender(submission, package)
            accepted = await self._accept(submission, package)
        finally:
            submission.body.discard()  # moved into the payload store, or refused
        if accepted.duplicate_of == "document-id":
            raise DuplicatePackage(
                f"DocumentId {package.document_id!r} from {package.from_code} was already "
                f"accepted as {accepted.message_id}",
                desc_vi="Van ban da duoc gui truoc do",
                extra={"messageId": accepted.message_id})
        if accepted.duplicate_of is None:
            self._on_accepted()
        return accepted

    def _check_sender(self, submission: Submission, package: ParsedPackage) -> None:
        if submission.declared_kind is not None and package.kind != submission.declared_kind:
            raise PackageRejected(
                f"messagetype is '{submission.declared_kind}' but the package is a "
                f"{package.kind.value} package", desc_vi="Sai loai goi tin",
                problems=[Problem("MESSAGETYPE_MISMATCH", "MessageHeader",
                                  f"expected a {submission.declared_kind} package")])
        if submission.declared_from is not None and \
                submission.declared_from != package.from_code:
            raise PermissionDenied(
                f"header 'from' is {submission.declared_from} but MessageHeader/From/OrganId "
                f"is {package.from_code}", desc_vi="Don vi gui khong khop")
        if not submission.system.serves(package.from_code):
            raise PermissionDenied(
                f"system {submission.system.system_id} is not registered to send as "
                f"{package.from_code}", desc_vi="Don vi gui chua dang ky")

    async def _accept(self, submission: Submission, package: ParsedPackage
                      ) -> AcceptedMessage:
        current = await self._store.current_codes(package.to_codes)
        systems = await self._store.list_systems()
        recipient_path = ((lambda i: f"MessageHeader/To[{i}]/OrganId")
                          if package.kind is MessageKind.EDOC
                          else (lambda i: "MessageHeader/ResponseFor/OrganId"))
        plans = plan_recipients(package.to_codes, current, systems,
                                self._settings.broker_shards, recipient_path)
        body = submission.body
        await asyncio.to_thread(self._payloads.put_file, body.path, body.sha256)
        is_new_document = package.kind is MessageKind.EDOC and package.business_type == 0
        return await self._store.accept(NewMessage(
            kind=package.kind, sender_system_id=submission.system.system_id, package=package,
            payload_sha256=body.sha256, payload_size=body.size, recipients=plans,
            dedup_key=f"{package.from_code}|{package.document_id}" if is_new_document else None,
            idempotency_key=(f"{submission.system.system_id}|{submission.idempotency_key}"
                             if submission.idempotency_key else None),
            warnings=package.warnings), actor=f"system:{submission.system.system_id}")
