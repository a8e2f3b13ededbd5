"""Receive → validate → accept: the path of a package from a sender into the database.

Only after the accepting transaction commits does the sender get an id; the relay is woken
to publish, but nothing depends on that happening now (the outbox keeps the work).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from gateway.config import request_scope
from gateway.edxml.model import BusinessType, DocumentPackage
from gateway.edxml.parser import ParsedPackage, parse_package
from gateway.errors import (
    DocumentDuplicate,
    DuplicatePackage,
    GatewayError,
    PackageKindMismatch,
    Problem,
    RecipientUnknown,
    SenderMismatch,
    SenderNotRegistered,
    ServiceUnavailable,
    SignatureRejected,
)
from gateway.peers import PeerItemRef
from gateway.ports import PayloadStore, SignatureVerifier, Store
from gateway.records import (
    AcceptedMessage,
    NewMessage,
    RecipientPlan,
    SystemRecord,
)
from gateway.routing import plan_recipients, route_known, serving_system
from gateway.services.package_facts import (
    attachment_records,
    business_act,
    dedup_key,
    named_recipients,
    only_declared,
    signing_time,
    status_act,
)
from gateway.settings import Settings, SignaturePolicy
from gateway.signatures import (
    SignatureOutcome,
    SignatureReport,
    check_binding,
    effective_policy,
    enforce,
)
from gateway.spool import SpooledBody
from gateway.types import AgencyCode, MessageKind, Sha256Hex


@dataclass(frozen=True, slots=True)
class Submission:
    system: SystemRecord
    body: SpooledBody
    declared_kind: MessageKind | None = None
    declared_from: str | None = None
    """The SDK's `from` header: must equal the package's From/OrganId when given."""
    declared_to: tuple[str, ...] | None = None
    """The SDK's `to` header: deliver only to these of the package's recipients."""
    idempotency_key: str | None = None
    peer_item: PeerItemRef | None = None
    """Polled from a peer (SPEC §3.5): `system` stands for the peer, the sender must be no
    agency a local system serves, and no recipient goes back to that peer."""

    @property
    def actor(self) -> str:
        """Who the timeline and evidence name as the submitter."""
        if self.peer_item is not None:
            return f"peer:{self.peer_item.peer}"
        return f"system:{self.system.system_id}"


class SubmitPackage:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        payloads: PayloadStore,
        verifier: SignatureVerifier,
        on_accepted: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._payloads = payloads
        self._verifier = verifier
        self._on_accepted = on_accepted

    async def __call__(self, submission: Submission) -> AcceptedMessage:
        """One configuration snapshot for the whole submission (as within one request):
        its checks and its routes agree, and the version is read once, not per lookup."""
        with request_scope():
            return await self._checked(submission)

    async def _checked(self, submission: Submission) -> AcceptedMessage:
        try:
            return await self._submit(submission)
        except ServiceUnavailable:
            raise
        except GatewayError as error:
            if not isinstance(error, DuplicatePackage):
                await self.record_refusal(submission.system, submission.body.sha256, error)
            raise

    async def record_refusal(
        self, system: SystemRecord, sha256: str | None, error: GatewayError
    ) -> None:
        """Evidence of a refusal: who, which bytes (hash), why. Best effort: a refusal must
        reach the sender even when the evidence cannot be written."""
        try:
            await self._store.record_refusal(
                f"system:{system.system_id}", sha256, error.code, error.detail
            )
        except GatewayError:
            pass

    async def _submit(self, submission: Submission) -> AcceptedMessage:
        package: ParsedPackage | None = None
        try:
            package = await asyncio.to_thread(
                parse_package,
                submission.body.path,
                work_dir=self._settings.spool_dir,
                keep_attachments=True,
                strict_lengths=self._settings.strict_lengths,
            )
            self._check_sender(submission, package)
            signature, warning = await self._verify_signature(submission, package)
            accepted = await self._accept(submission, package, signature, warning)
        finally:
            submission.body.discard()  # moved into the payload store, or refused
            for attachment in package.attachments if package else ():
                attachment.discard()
        if accepted.duplicate_of == "document-id":
            raise DocumentDuplicate(
                f"DocumentId {package.document_id!r} from {package.from_code} was already "
                f"accepted as {accepted.message_id}",
                problems=[
                    Problem(
                        "DUPLICATE_DOCUMENT",
                        "MessageHeader/DocumentId",
                        f"{package.document_id!r} from {package.from_code} was already accepted "
                        f"as {accepted.message_id}",
                    )
                ],
                extra={"messageId": accepted.message_id},
            )
        if accepted.duplicate_of is None:
            self._on_accepted()
        return accepted

    def _check_sender(self, submission: Submission, package: ParsedPackage) -> None:
        """Each refusal names the element (or header) to fix, like every package refusal
        (SPEC §5 "Clear errors"): a sender the system does not serve is most often a typo
        in From/OrganId."""
        if submission.declared_kind is not None and package.kind != submission.declared_kind:
            raise PackageKindMismatch(
                f"messagetype is '{submission.declared_kind}' but the package is a "
                f"{package.kind.value} package",
                problems=[
                    Problem(
                        "MESSAGETYPE_MISMATCH",
                        "MessageHeader",
                        f"expected a {submission.declared_kind} package",
                    )
                ],
            )
        if submission.declared_from is not None and submission.declared_from != package.from_code:
            raise SenderMismatch(
                f"header 'from' is {submission.declared_from} but MessageHeader/From/OrganId "
                f"is {package.from_code}",
                problems=[
                    Problem(
                        "FROM_MISMATCH",
                        "MessageHeader/From/OrganId",
                        f"is {package.from_code} but header XroadVnpt-from is "
                        f"{submission.declared_from}",
                    )
                ],
            )
        if submission.peer_item is not None:
            return  # checked against the local systems in `_accept` (it needs the snapshot)
        if not submission.system.serves(package.from_code):
            raise SenderNotRegistered(
                f"system {submission.system.system_id} is not registered to send as "
                f"{package.from_code}",
                problems=[
                    Problem(
                        "SENDER_NOT_SERVED",
                        "MessageHeader/From/OrganId",
                        f"system {submission.system.system_id} is not registered to "
                        f"send as {package.from_code}",
                    )
                ],
            )

    async def _verify_signature(
        self, submission: Submission, package: ParsedPackage
    ) -> tuple[SignatureReport, Problem | None]:
        """Verify per the policy of the sending agency, else its system, else the node's."""
        system_policy, agency_policy = await self._store.signature_policies(
            submission.system.system_id, package.from_code
        )
        policy = effective_policy(self._settings.signature_policy, system_policy, agency_policy)
        if policy is SignaturePolicy.OFF:
            report = SignatureReport(SignatureOutcome.NOT_CHECKED, None, "signature policy off")
        elif not package.model.signed:
            report = SignatureReport(SignatureOutcome.ABSENT)
        else:
            document = await asyncio.to_thread(submission.body.path.read_bytes)
            tolerance = timedelta(seconds=self._settings.signing_time_tolerance_seconds)
            report = await self._verifier.verify(
                document,
                lambda set_aside: signing_time(package, tolerance=tolerance, set_aside=set_aside),
            )
            report = check_binding(
                report,
                package.from_code,
                await self._store.certificate_bindings(
                    package.from_code, report.details.get("fingerprint")
                ),
            )
        problem = enforce(policy, report)
        if problem is not None and problem.severity == "error":
            raise SignatureRejected(f"{problem.code}: {problem.message}", problems=[problem])
        return report, problem

    async def _accept(
        self,
        submission: Submission,
        package: ParsedPackage,
        signature: SignatureReport,
        warning: Problem | None,
    ) -> AcceptedMessage:
        act = business_act(package)
        named = named_recipients(package)
        if submission.declared_to is not None:
            named = with_successors(
                named,
                await self._store.current_codes([code for code, _ in named]),
                submission.declared_to,
            )
        listed = only_declared(named, submission.declared_to)
        systems = await self._store.list_systems()
        peers = await self._store.list_peers()
        if submission.peer_item is not None:
            check_from_peer(submission.peer_item, package, systems)
        holders: dict[str, Any] = {}
        original = await self._store.original_recipients(act.target_key) if act else None
        current = await self._store.current_codes([code for code, _ in listed] + (original or []))
        redirected = merge_warnings(listed, current)
        shards = self._settings.broker_shards
        if act is not None and act.kind is BusinessType.REVOKE and original is not None:
            # The revocation goes to whoever has the original; the To it lists is a reminder.
            plans = tuple(
                route_known([c for c, _ in listed], current, systems, shards, peers).values()
            )
            holders = route_known(original, current, systems, shards, peers)
        else:
            paths = [path for _, path in listed]
            closed = await self._store.closed_agencies(list(current.values()))
            plans = plan_recipients(
                [code for code, _ in listed],
                current,
                systems,
                shards,
                lambda index: paths[index - 1],
                closed,
                peers,
            )
        if submission.peer_item is not None:
            check_not_back_to(submission.peer_item, plans)
        body = submission.body
        await asyncio.to_thread(self._store_files, body, package)
        accepted = await self._store.accept(
            NewMessage(
                kind=package.kind,
                sender_system_id=submission.system.system_id,
                package=package,
                payload_sha256=body.sha256,
                payload_size=body.size,
                recipients=plans,
                dedup_key=dedup_key(package, body.sha256),
                adds_recipients=submission.declared_to is not None,
                idempotency_key=(
                    f"{submission.system.system_id}|{submission.idempotency_key}"
                    if submission.idempotency_key
                    else None
                ),
                warnings=package.warnings + ((warning,) if warning else ()) + redirected,
                attachments=attachment_records(package),
                signature=signature.as_dict(),
                header=package.model.model_dump(
                    mode="json", exclude_none=True, exclude={"references", "attachments"}
                ),
                signed=isinstance(package.model, DocumentPackage) and package.model.signed,
                paper=(
                    package.model.business.paper
                    if isinstance(package.model, DocumentPackage) and package.model.business
                    else None
                ),
                business=act,
                holders=holders,
                status=status_act(package),
                peer_item=submission.peer_item,
            ),
            actor=submission.actor,
        )
        return replace(accepted, warnings=redirected) if redirected else accepted

    def _store_files(self, body: SpooledBody, package: ParsedPackage) -> None:
        self._payloads.put_file(body.path, body.sha256)
        for attachment in package.attachments:
            if attachment.path is not None and attachment.path.exists():
                self._payloads.put_file(attachment.path, Sha256Hex(attachment.sha256))


def check_from_peer(
    item: PeerItemRef, package: ParsedPackage, systems: Sequence[SystemRecord]
) -> None:
    """A package a peer hands out comes from behind that peer: one that claims a sender a
    local system serves is a loop or a forgery, and would mislead its recipient."""
    if serving_system(package.from_code, systems) is not None:
        raise SenderNotRegistered(
            f"peer {item.peer} handed out a package from {package.from_code}, an agency "
            "served on this node",
            problems=[
                Problem(
                    "SENDER_IS_LOCAL",
                    "MessageHeader/From/OrganId",
                    f"{package.from_code} is served on this node, not behind peer {item.peer}",
                )
            ],
        )


def check_not_back_to(item: PeerItemRef, plans: Sequence[RecipientPlan]) -> None:
    """An item from a peer is delivered here (or onward to another peer), never back to the
    peer it came from: that would be a ping-pong, not a delivery."""
    back = [p.recipient_code for p in plans if p.peer == item.peer]
    if back:
        raise RecipientUnknown(
            f"recipient not served by this node: {', '.join(back)} (peer {item.peer} "
            "routed it here, and this node routes it back to that peer)",
            problems=[
                Problem(
                    "RECIPIENT_NOT_HERE", "MessageHeader/To/OrganId", f"{code} is not served here"
                )
                for code in back
            ],
        )


def merge_warnings(
    listed: list[tuple[AgencyCode, str]], current: dict[str, str]
) -> tuple[Problem, ...]:
    """A warning for each named recipient the directory merged into a successor: the package
    goes to the successor, and the sender must hear it (SPEC §2.3, the 2025 reorganisation)."""
    return tuple(
        Problem(
            "RECIPIENT_MERGED",
            path,
            f"{code} was merged into {current[code]}: the package goes to {current[code]}",
            "warning",
        )
        for code, path in listed
        if current.get(code, code) != code
    )


def with_successors(
    named: list[tuple[AgencyCode, str]], current: dict[str, str], declared: tuple[str, ...]
) -> list[tuple[AgencyCode, str]]:
    """The recipients a `to` header may pick: those the package names, and the live successor
    of a merged one (under the same element). A forwarding node that followed a merge names
    the successor in `to` while the package's To, never edited, names the old code."""
    names = {code for code, _ in named}
    extra = [
        (AgencyCode(code), path)
        for code in dict.fromkeys(declared)
        if code not in names
        for old, path in named
        if current.get(old) == code
    ][: len(declared)]
    return named + list(dict(extra).items())
