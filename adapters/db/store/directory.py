"""The directory in the store: versioned changes, listings, successors of merged agencies,
sync, registration by systems.

Every change of a row takes a fresh node-wide version from the one `directory_version` row,
locked first thing in the writing transaction (see `DirectoryVersion`): directory writers
queue behind each other on PostgreSQL as they do on SQLite, which is cheap (directory changes
are rare) and makes "every unit whose version is above N" a complete answer for a peer that
synced up to N. Every change also bumps the configuration version (`store.config`): successors
and closed agencies are read from its snapshot on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from adapters.db.models import Agency, DirectoryVersion, utcnow
from adapters.db.store.base import SqlBase
from adapters.db.store.config import bump_config
from adapters.db.store.evidence import append_evidence
from gateway.agencies import ACTIVE, CLOSED, DELETED, OPERATOR_OWNED
from gateway.codes import code_level
from gateway.errors import AgencyHasSubUnits, AgencyMergedOrDissolved, AgencyNotFound
from gateway.evidence import EvidenceEvent
from gateway.records import AgencyRecord, AgencyRegistration, DirectoryChange, DirectoryUnit
from gateway.types import AgencyCode

LOOKUP_CHUNK = 5000
"""Codes per `IN (…)`: both backends cap the parameters of one statement (~32k)."""


class Versions:
    """The next directory versions, handed out while the counter row is locked."""

    def __init__(self, row: DirectoryVersion) -> None:
        self._row = row

    def take(self) -> int:
        self._row.value += 1
        return self._row.value


def _chunks(codes: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(codes))
    for start in range(0, len(unique), LOOKUP_CHUNK):
        yield unique[start : start + LOOKUP_CHUNK]


def _record(row: Agency, parent_id: int | None) -> AgencyRecord:
    return AgencyRecord(
        code=AgencyCode(row.code),
        name=row.name,
        parent_code=row.parent_code,
        mail=row.mail,
        status=row.status,
        successor_code=row.successor_code,
        old_code=row.old_code,
        id=row.id,
        parent_id=parent_id,
    )


def _changed(row: Agency, fields: dict[str, Any]) -> bool:
    return any(getattr(row, name) != value for name, value in fields.items())


class SqlDirectory(SqlBase):
    """The agency directory, each call one transaction."""

    @staticmethod
    async def _versions(session: AsyncSession) -> Versions:
        """Lock the counter before reading anything: a change computed from rows read before
        the lock could be overtaken by a writer that held it."""
        row = await session.scalar(
            select(DirectoryVersion).where(DirectoryVersion.id == 1).with_for_update()
        )
        if row is None:
            raise RuntimeError("directory_version is missing: run `lienthong migrate`")
        return Versions(row)

    async def upsert_agencies(self, records: Sequence[AgencyRecord]) -> tuple[int, int]:
        """Insert new codes and update changed ones, each taking a new version; a row the
        import leaves as it was keeps its version (re-importing the national directory must
        not make every peer sync it all again). Returns (added, updated)."""
        added = updated = 0
        now = utcnow()
        async with self.transaction() as session:
            versions = await self._versions(session)
            known: dict[str, Agency] = {}
            for chunk in _chunks([r.code for r in records]):
                known.update(
                    (a.code, a)
                    for a in (
                        await session.scalars(select(Agency).where(Agency.code.in_(chunk)))
                    ).all()
                )
            for record in records:
                fields: dict[str, Any] = dict(
                    name=record.name,
                    parent_code=record.parent_code,
                    mail=record.mail,
                    status=record.status,
                    successor_code=record.successor_code,
                    old_code=record.old_code,
                    level=code_level(record.code),
                )
                row = known.get(record.code)
                if row is None:
                    row = known[record.code] = Agency(code=record.code, **fields)
                    session.add(row)
                    added += 1
                elif _changed(row, fields):
                    for name, value in fields.items():
                        setattr(row, name, value)
                    updated += 1
                else:
                    continue
                row.version, row.updated_at = versions.take(), now
            if added or updated:
                await bump_config(session)
        return added, updated

    async def list_agencies(self, prefix: str | None = None) -> list[AgencyRecord]:
        """The directory, or the agencies whose code ends with `prefix` (codes read right to
        left: `H53` is one province), each with its parent's row id, filtered in SQL."""
        parent = aliased(Agency)
        query = (
            select(Agency, parent.id)
            .outerjoin(parent, parent.code == Agency.parent_code)
            .order_by(Agency.code)
        )
        if prefix is not None:
            query = query.where(Agency.code.endswith(prefix, autoescape=True))
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(query)).all()
        return [_record(row, parent_id) for row, parent_id in rows]

    async def current_codes(self, codes: Sequence[str]) -> dict[str, str]:
        """Follow merged agencies to their successor (SPEC §3.1 step 3); unknown codes map to
        themselves. Cycles and over-long chains stop where they are. From the configuration
        snapshot: a package may name hundreds of recipients."""
        return (await self.config()).current_codes(codes)

    async def closed_agencies(self, codes: Sequence[str]) -> dict[str, str]:
        """Those of `codes` the directory retired or deleted, with that status (from the
        configuration snapshot)."""
        return (await self.config()).closed_among(codes)

    async def agency_statuses(self, codes: Sequence[str]) -> dict[str, str]:
        """Status of each of `codes` the directory knows (unknown codes are left out)."""
        statuses: dict[str, str] = {}
        async with self.transaction(read_only=True) as session:
            for chunk in _chunks(codes):
                statuses.update(
                    (r.code, r.status)
                    for r in (
                        await session.execute(
                            select(Agency.code, Agency.status).where(Agency.code.in_(chunk))
                        )
                    ).all()
                )
        return statuses

    async def listed_agencies(self, level: int | None = None) -> list[AgencyRecord]:
        """What `getAgenciesList` lists: live entries (optionally of one level), each with
        the row id of its parent when that parent is listed too, else None (a root)."""
        parent = aliased(Agency)
        query = (
            select(Agency, parent.id)
            .outerjoin(parent, (parent.code == Agency.parent_code) & parent.status.not_in(CLOSED))
            .where(Agency.status.not_in(CLOSED))
            .order_by(Agency.code)
        )
        if level is not None:
            query = query.where(Agency.level == level)
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(query)).all()
        return [_record(row, parent_id) for row, parent_id in rows]

    async def directory_units(self, after_version: int = 0) -> list[DirectoryUnit]:
        """Every row whose version is above `after_version`, tombstones included, in version
        order (the last one's version is where the caller's next sync starts)."""
        parent = aliased(Agency)
        query = (
            select(Agency, parent.id)
            .outerjoin(parent, parent.code == Agency.parent_code)
            .where(Agency.version > after_version)
            .order_by(Agency.version)
        )
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(query)).all()
        return [
            DirectoryUnit(
                id=row.id,
                parent_id=parent_id,
                code=AgencyCode(row.code),
                name=row.name,
                mail=row.mail,
                status=row.status,
                version=row.version,
                modified_at=row.updated_at,
            )
            for row, parent_id in rows
        ]

    async def register_agency(
        self, registration: AgencyRegistration, actor: str
    ) -> DirectoryChange:
        """Add the unit or update it (a tombstone comes back to life); a merged or retired
        code is the operator's and is refused. The change and who made it go into the
        evidence log in the same transaction."""
        now = utcnow()
        code = registration.code
        async with self.transaction() as session:
            versions = await self._versions(session)
            row = await session.scalar(select(Agency).where(Agency.code == code))
            if row is not None and row.status in OPERATOR_OWNED:
                successor = f" into {row.successor_code}" if row.successor_code else ""
                raise AgencyMergedOrDissolved(
                    f"{code} is {row.status}{successor} in the directory: only an operator "
                    "can change it"
                )
            fields: dict[str, Any] = dict(
                name=registration.name,
                parent_code=registration.parent_code,
                mail=registration.mail,
                mobile=registration.mobile,
                fax=registration.fax,
                status=ACTIVE,
                level=code_level(code),
            )
            if row is None:
                change, row = "added", Agency(code=code, **fields)
                session.add(row)
            elif not _changed(row, fields):
                return DirectoryChange(code, "unchanged", row.version)
            else:
                change = "restored" if row.status == DELETED else "updated"
                for name, value in fields.items():
                    setattr(row, name, value)
            row.version, row.updated_at = versions.take(), now
            await bump_config(session)
            await append_evidence(
                session,
                EvidenceEvent.AGENCY_REGISTERED,
                actor,
                now,
                details={
                    "code": code,
                    "change": change,
                    "version": row.version,
                    "name": registration.name,
                    "parent": registration.parent_code,
                    "mail": registration.mail,
                    "mobile": registration.mobile,
                    "fax": registration.fax,
                },
            )
            return DirectoryChange(code, change, row.version)

    async def delete_agency(self, code: str, actor: str) -> DirectoryChange:
        """Make the unit a tombstone; deleting one already deleted changes nothing (a client
        that retries after a lost answer gets OK). A unit with live sub-units is refused:
        they would hang under a unit that no longer exists."""
        now = utcnow()
        async with self.transaction() as session:
            versions = await self._versions(session)
            row = await session.scalar(select(Agency).where(Agency.code == code))
            if row is None:
                raise AgencyNotFound(f"no agency {code} in the directory")
            if row.status == DELETED:
                return DirectoryChange(AgencyCode(code), "unchanged", row.version)
            children = (
                await session.scalars(
                    select(Agency.code)
                    .where(Agency.parent_code == code, Agency.status.not_in(CLOSED))
                    .order_by(Agency.code)
                    .limit(6)
                )
            ).all()
            if children:
                shown = ", ".join(children[:5]) + (", ..." if len(children) > 5 else "")
                raise AgencyHasSubUnits(f"{code} still has sub-units ({shown}): delete them first")
            previous = row.status
            row.status, row.version, row.updated_at = DELETED, versions.take(), now
            await bump_config(session)
            await append_evidence(
                session,
                EvidenceEvent.AGENCY_DELETED,
                actor,
                now,
                details={
                    "code": code,
                    "version": row.version,
                    "name": row.name,
                    "previous_status": previous,
                },
            )
            return DirectoryChange(AgencyCode(code), "deleted", row.version)
