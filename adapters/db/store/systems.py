"""Connected systems in the store: their credentials (secrets sealed), what they serve and
how they take deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from adapters.db.models import System
from adapters.db.store.base import SqlBase
from gateway.codes import ServePattern
from gateway.errors import InvalidRequest
from gateway.records import SystemCredentials, SystemRecord
from gateway.types import SystemId


def _system_record(row: System) -> SystemRecord:
    return SystemRecord(
        system_id=SystemId(row.system_id),
        patterns=tuple(ServePattern.parse(p) for p in row.serves),
        delivery_mode=row.delivery_mode,
        enabled=row.enabled,
    )


class SqlSystems(SqlBase):
    async def add_system(
        self,
        system_id: str,
        secret: str,
        patterns: Sequence[str],
        delivery_mode: str = "poll",
        push_url: str | None = None,
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

    async def get_system(self, system_id: str) -> SystemRecord | None:
        async with self.transaction(read_only=True) as session:
            row = await session.scalar(select(System).where(System.system_id == system_id))
        return _system_record(row) if row is not None else None

    async def get_credentials(self, system_id: str) -> SystemCredentials | None:
        async with self.transaction(read_only=True) as session:
            row = await session.scalar(select(System).where(System.system_id == system_id))
        if row is None:
            return None
        return SystemCredentials(_system_record(row), self._box.open(row.secret_ciphertext))

    async def list_systems(self) -> list[SystemRecord]:
        async with self.transaction(read_only=True) as session:
            rows = (await session.scalars(select(System).order_by(System.system_id))).all()
        return [_system_record(row) for row in rows]
