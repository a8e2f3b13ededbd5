"""Connected systems in the store: their credentials (secrets sealed), what they serve and
how they take deliveries. Reads come from the configuration snapshot (`gateway.config`);
every change bumps its version. A change made by an operator (`by`) writes its audit row
(`operator_actions`) in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import System, utcnow
from adapters.db.store.base import SqlBase
from adapters.db.store.config import bump_config
from adapters.db.store.operator_accounts import operator_action_row
from gateway.errors import InvalidRequest, NotFound
from gateway.operators import Operator
from gateway.records import SystemCredentials, SystemRecord


def _audit(
    session: AsyncSession,
    by: Operator | None,
    action: str,
    system_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    if by is not None:
        session.add(
            operator_action_row(
                by, action, f"system {system_id}", None, False, details or {}, utcnow()
            )
        )


class SqlSystems(SqlBase):
    async def add_system(
        self,
        system_id: str,
        secret: str,
        patterns: Sequence[str],
        delivery_mode: str = "poll",
        push_url: str | None = None,
        *,
        by: Operator | None = None,
    ) -> None:
        async with self.transaction() as session:
            existing = await session.scalar(select(System).where(System.system_id == system_id))
            if existing is not None:
                raise InvalidRequest(f"system {system_id} already exists")
            session.add(
                System(
                    system_id=system_id,
                    secret_ciphertext=self._box.seal(secret),
                    serves=list(patterns),
                    delivery_mode=delivery_mode,
                    push_url=push_url,
                )
            )
            _audit(
                session,
                by,
                "system.add",
                system_id,
                {"serves": list(patterns), "delivery_mode": delivery_mode, "push_url": push_url},
            )
            await bump_config(session)

    async def get_system(self, system_id: str) -> SystemRecord | None:
        return (await self.config()).system(system_id)

    async def get_credentials(self, system_id: str) -> SystemCredentials | None:
        return (await self.config()).credentials(system_id)

    async def list_systems(self) -> list[SystemRecord]:
        return (await self.config()).list_systems()

    async def set_system_enabled(
        self, system_id: str, enabled: bool, *, by: Operator | None = None
    ) -> None:
        """A disabled system is refused at authentication and routed nothing."""
        async with self.transaction() as session:
            row = await self._system_row(session, system_id)
            row.enabled = enabled
            _audit(session, by, "system.enable" if enabled else "system.disable", system_id)
            await bump_config(session)

    async def set_system_secret(
        self, system_id: str, secret: str, *, by: Operator | None = None
    ) -> None:
        """Rotate a system's secret: the old one stops working at once on every process."""
        async with self.transaction() as session:
            row = await self._system_row(session, system_id)
            row.secret_ciphertext = self._box.seal(secret)
            _audit(session, by, "system.rotate-secret", system_id)
            await bump_config(session)

    async def remove_system(self, system_id: str, *, by: Operator | None = None) -> None:
        """Forget a system (its deliveries keep their rows; nothing is routed to it again)."""
        async with self.transaction() as session:
            await session.delete(await self._system_row(session, system_id))
            _audit(session, by, "system.remove", system_id)
            await bump_config(session)

    @staticmethod
    async def _system_row(session: AsyncSession, system_id: str) -> System:
        row = await session.scalar(select(System).where(System.system_id == system_id))
        if row is None:
            raise NotFound(f"no system {system_id}")
        return row
