"""Push deliveries in the store: what to POST where, and what each attempt changed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from adapters.db.models import Delivery, Message, System, utcnow
from adapters.db.store.base import SqlBase, catch_up, transition
from adapters.db.store.evidence import append_evidence
from gateway.delivery_states import DELIVERABLE, DeliveryState
from gateway.evidence import EvidenceEvent
from gateway.records import PushTarget
from gateway.types import MessageKind

S = DeliveryState


class SqlPush(SqlBase):
    async def push_target(self, delivery_id: str) -> PushTarget | None:
        """The delivery, if it is still to be pushed (a redelivered broker message for a
        delivery already done or dead finds nothing to do)."""
        async with self.transaction(read_only=True) as session:
            row = (
                await session.execute(
                    select(Delivery, Message, System)
                    .join(Message, Message.id == Delivery.message_id)
                    .join(System, System.system_id == Delivery.system_id)
                    .where(Delivery.public_id == delivery_id)
                )
            ).first()
        if row is None:
            return None
        delivery, message, system = row
        if delivery.state not in DELIVERABLE or not system.push_url:
            return None
        return PushTarget(
            delivery.public_id,
            message.public_id,
            MessageKind(message.kind),
            message.from_code,
            delivery.recipient_code,
            system.system_id,
            system.push_url,
            system.secret_ciphertext,
            message.payload_sha256,
            delivery.attempts,
            delivery.created_at,
            system.enabled,
        )

    def open_secret(self, ciphertext: str) -> str:
        return self._box.open(ciphertext)

    async def push_succeeded(self, delivery_id: str, detail: str) -> bool:
        now = utcnow()
        async with self.transaction() as session:
            delivery = await session.scalar(
                select(Delivery).where(Delivery.public_id == delivery_id).with_for_update()
            )
            if delivery is None or delivery.state not in DELIVERABLE:
                return False  # a concurrent attempt already settled it
            catch_up(session, delivery, "push", now)
            delivery.attempts += 1
            transition(session, delivery, S.DONE, "push", f"pushed: {detail}", now)
            delivery.done_at = delivery.available_at = now
            delivery.next_attempt_at, delivery.last_error = None, None
            message = await session.get(Message, delivery.message_id)
            assert message is not None
            await append_evidence(
                session,
                EvidenceEvent.DELIVERED,
                "push",
                now,
                message_id=message.public_id,
                delivery_id=delivery_id,
                payload_sha256=message.payload_sha256,
                details={
                    "recipient": delivery.recipient_code,
                    "system": delivery.system_id,
                    "result": detail,
                },
            )
            return True

    async def push_failed(self, delivery_id: str, error: str, retry_in: float | None) -> str:
        """Record a failed attempt: `retrying` until the next one (in `retry_in` seconds), or
        `dead` when the budget is spent (`retry_in` None). Returns the new state."""
        now = utcnow()
        async with self.transaction() as session:
            delivery = await session.scalar(
                select(Delivery).where(Delivery.public_id == delivery_id).with_for_update()
            )
            if delivery is None or delivery.state not in DELIVERABLE:
                return delivery.state if delivery else "missing"
            catch_up(session, delivery, "push", now)
            delivery.attempts += 1
            target = S.DEAD if retry_in is None else S.RETRYING
            reason = f"attempt {delivery.attempts}: {error}" + (
                "; retry budget spent"
                if retry_in is None
                else f"; next attempt in {retry_in:.0f} s"
            )
            transition(session, delivery, target, "push", reason[:2000], now)
            delivery.last_error = error[:2000]
            delivery.next_attempt_at = (
                None if retry_in is None else now + timedelta(seconds=retry_in)
            )
            return delivery.state
