"""A status checked against its document's flow (SPEC §2.2), inside the accepting transaction.

The document is found by DocumentId, else by sender, recipient and Code, and locked, so two
statuses for one document are checked one after the other; the recipient's history (and the
sender's recall requests to it) decides whether the new code may follow.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import Delivery, Message, MessageLink
from gateway import status_flow
from gateway.edxml.model import StatusCode
from gateway.errors import OriginalUnknown, Problem, StatusDuplicate, StatusFlowBroken
from gateway.records import StatusAct
from gateway.types import MessageKind


async def check_status(session: AsyncSession, act: StatusAct) -> Message:
    """The document a status answers (row locked), after checking the recipient's flow;
    refuses an unknown document, a broken flow or a duplicate."""
    target = await _status_target(session, act)
    if target is None:
        raise OriginalUnknown(
            f"no document {act.document_id!r} from {act.original_sender} to "
            f"{act.recipient} went through this node",
            problems=[
                Problem(
                    "STATUS_UNKNOWN_DOCUMENT",
                    "MessageHeader/ResponseFor",
                    f"no document {act.document_id!r} from "
                    f"{act.original_sender} to {act.recipient} (matched by "
                    "DocumentId, then by sender, recipient and Code "
                    f"{act.code_number}/{act.code_notation})",
                )
            ],
        )
    history = await _status_history(session, target.id, act.recipient)
    verdict = status_flow.check(StatusCode(act.code), [StatusCode(code) for code, _ in history])
    if verdict.duplicate:
        earlier = next(public for code, public in reversed(history) if code == act.code)
        raise StatusDuplicate(
            f"status {act.code} for {act.document_id!r} from {act.recipient} was already "
            f"accepted as {earlier}",
            problems=[
                Problem(
                    "STATUS_DUPLICATE",
                    "MessageHeader/StatusCode",
                    f"{act.code} was already sent for this document",
                )
            ],
            extra={"messageId": earlier},
        )
    if verdict.problem:
        raise StatusFlowBroken(
            verdict.problem,
            problems=[Problem("STATUS_FLOW", "MessageHeader/StatusCode", verdict.problem)],
        )
    return target


async def _status_target(session: AsyncSession, act: StatusAct) -> Message | None:
    """By DocumentId first, else by (sender, recipient, Code) (SPEC §2.2)."""
    to_recipient = or_(
        Delivery.recipient_code == act.recipient, Delivery.requested_code == act.recipient
    )
    base = (
        select(Message)
        .join(Delivery, Delivery.message_id == Message.id)
        .where(Message.kind == MessageKind.EDOC.value, to_recipient)
        .order_by(Message.id.desc())
        .limit(1)
        .with_for_update(of=Message)
    )
    found = await session.scalar(
        base.where(Message.dedup_key == f"{act.original_sender}|{act.document_id}")
    )
    if found is None and act.code_number and act.code_notation:
        found = await session.scalar(
            base.where(
                Message.from_code == act.original_sender,
                Message.code_number == act.code_number,
                Message.code_notation == act.code_notation,
            )
        )
    return found


async def _status_history(
    session: AsyncSession, target_id: int, recipient: str
) -> list[tuple[str, str]]:
    """(code, status message id) of this document and recipient, oldest first: what the
    recipient sent back, and the sender's recall requests addressed to it."""
    answers = (
        select(Message.id, Message.status_code, Message.public_id, Message.from_code)
        .join(MessageLink, MessageLink.message_id == Message.id)
        .where(MessageLink.relation == "answers", MessageLink.target_message_id == target_id)
    )
    rows = (await session.execute(answers.order_by(Message.id))).all()
    recalls = set(
        (
            await session.scalars(
                select(Delivery.message_id).where(
                    Delivery.message_id.in_([r.id for r in rows if r.status_code == "13"]),
                    Delivery.recipient_code == recipient,
                )
            )
        ).all()
    )
    return [
        (r.status_code, r.public_id)
        for r in rows
        if (r.status_code != "13" and r.from_code == recipient) or r.id in recalls
    ]
