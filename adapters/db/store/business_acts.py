"""A business act (revoke, update, replace) applied to its original, inside the accepting
transaction: the links to the documents it acts on, and the original's deliveries it cancels.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import Delivery, Message, MessageLink
from adapters.db.store.base import delivery_ref, transition
from gateway.business import TargetDelivery, decide
from gateway.delivery_states import DeliveryState
from gateway.edxml.model import BusinessType
from gateway.records import DeliveryRef, NewMessage, RecipientPlan


async def apply_business(
    session: AsyncSession,
    new: NewMessage,
    message_id: int,
    message_public_id: str,
    actor: str,
    now: datetime,
) -> tuple[tuple[RecipientPlan, ...], tuple[DeliveryRef, ...]]:
    """Link the act to its target and apply `gateway.business.decide` with the target's
    deliveries locked (a download racing with a revocation is decided one way only)."""
    act = new.business
    assert act is not None
    target = await session.scalar(select(Message).where(Message.dedup_key == act.target_key))
    relation = {
        BusinessType.REVOKE: "revokes",
        BusinessType.UPDATE: "updates",
        BusinessType.REPLACE: "replaces",
    }[act.kind]
    targets = (
        [(act.target_document_id, target)]
        if act.kind is not BusinessType.REPLACE
        else [
            (
                key.partition("|")[2],
                await session.scalar(select(Message).where(Message.dedup_key == key)),
            )
            for key in act.replaced_keys
        ]
    )
    session.add_all(
        MessageLink(
            message_id=message_id,
            relation=relation,
            target_document_id=document_id,
            target_message_id=found.id if found else None,
        )
        for document_id, found in targets
    )
    rows: list[Delivery] = []
    if target is not None:
        rows = list(
            (
                await session.scalars(
                    select(Delivery)
                    .where(Delivery.message_id == target.id)
                    .order_by(Delivery.id)
                    .with_for_update()
                )
            ).all()
        )
    decision = decide(
        act,
        new.recipients,
        new.holders,
        [TargetDelivery(d.id, d.recipient_code, d.state) for d in rows]
        if target is not None
        else None,
        message_public_id,
    )
    cancelled = []
    for delivery in rows:
        if delivery.id in decision.cancel:
            transition(session, delivery, DeliveryState.CANCELLED, actor, decision.reason, now)
            delivery.lease_until = None
            cancelled.append(delivery_ref(delivery))
    return decision.plans, tuple(cancelled)
