"""What the store's mixins (`store_operators`, `store_push`) use of `SqlStore`, declared once
for the type checker: one transaction helper, the state machine, the evidence log."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import Delivery
from adapters.secretbox import SecretBox
from gateway.delivery_states import DeliveryState
from gateway.evidence import EvidenceEvent


class StoreMixin:
    if TYPE_CHECKING:
        _box: SecretBox

        def transaction(self, read_only: bool = False
                        ) -> AbstractAsyncContextManager[AsyncSession]: ...

        @staticmethod
        def _transition(session: AsyncSession, delivery: Delivery, target: DeliveryState,
                        actor: str, reason: str | None, now: datetime) -> None: ...

        @staticmethod
        async def _evidence(session: AsyncSession, event: EvidenceEvent, actor: str,
                            at: datetime, *, message_id: str | None = None,
                            delivery_id: str | None = None,
                            payload_sha256: str | None = None,
                            details: dict[str, Any] | None = None) -> None: ...
