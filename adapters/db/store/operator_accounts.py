"""Operator accounts (SPEC §4.3) and the audit row every operator action writes.

Operators have their own credentials, apart from agency systems: a name, a role and the SHA-256
of a token. Adding or disabling one is itself an audited action.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from adapters.db.models import utcnow
from adapters.db.models_operators import OperatorAccount, OperatorActionRow
from adapters.db.store.base import SqlBase
from gateway.errors import InvalidRequest, NotFound
from gateway.operators import Operator, OperatorCredentials, OperatorRecord, Role


def operator_action_row(
    by: Operator,
    action: str,
    target: str,
    reason: str | None,
    dry_run: bool,
    details: dict[str, Any],
    now: datetime,
) -> OperatorActionRow:
    """The audit row of one operator action, written in the action's own transaction."""
    return OperatorActionRow(
        at=now,
        operator=by.name,
        role=by.role.value,
        action=action,
        target=target,
        reason=reason,
        dry_run=dry_run,
        details=details,
    )


def _operator_record(row: OperatorAccount) -> OperatorRecord:
    return OperatorRecord(
        name=row.name, role=Role(row.role), enabled=row.enabled, created_at=row.created_at
    )


class SqlOperatorAccounts(SqlBase):
    """Who may operate the node, each call one transaction."""

    async def add_operator(self, name: str, role: Role, token_sha256: str, by: Operator) -> None:
        now = utcnow()
        try:
            async with self.transaction() as session:
                existing = await session.scalar(
                    select(OperatorAccount.id).where(OperatorAccount.name == name)
                )
                if existing is not None:
                    raise InvalidRequest(f"operator {name} already exists")
                session.add(
                    OperatorAccount(
                        name=name,
                        role=role.value,
                        token_sha256=token_sha256,
                        enabled=True,
                        created_at=now,
                    )
                )
                session.add(
                    operator_action_row(
                        by,
                        "operator.add",
                        f"operator {name}",
                        None,
                        False,
                        {"role": role.value},
                        now,
                    )
                )
        except IntegrityError:
            raise InvalidRequest(f"operator {name} already exists") from None

    async def set_operator_enabled(self, name: str, enabled: bool, by: Operator) -> None:
        now = utcnow()
        async with self.transaction() as session:
            row = await session.scalar(select(OperatorAccount).where(OperatorAccount.name == name))
            if row is None:
                raise NotFound(f"no operator {name}")
            row.enabled = enabled
            session.add(
                operator_action_row(
                    by,
                    "operator.enable" if enabled else "operator.disable",
                    f"operator {name}",
                    None,
                    False,
                    {},
                    now,
                )
            )

    async def record_operator_action(
        self, by: Operator, action: str, target: str, details: dict[str, Any]
    ) -> None:
        """An audit row for an operator's act that changes nothing else (a console
        sign-in); acts that change the node write theirs in their own transaction."""
        async with self.transaction() as session:
            session.add(operator_action_row(by, action, target, None, False, details, utcnow()))

    async def get_operator(self, name: str) -> OperatorCredentials | None:
        async with self.transaction(read_only=True) as session:
            row = await session.scalar(select(OperatorAccount).where(OperatorAccount.name == name))
        if row is None:
            return None
        return OperatorCredentials(_operator_record(row), row.token_sha256)

    async def list_operators(self) -> list[OperatorRecord]:
        async with self.transaction(read_only=True) as session:
            rows = (
                await session.scalars(select(OperatorAccount).order_by(OperatorAccount.name))
            ).all()
        return [_operator_record(row) for row in rows]
