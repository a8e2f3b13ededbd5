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

import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from adapters.db.models import Agency, Delivery, DirectoryVersion, OutboxEntry, table, utcnow
from adapters.db.store.base import SqlBase, state_values, transition
from adapters.db.store.config import bump_config
from adapters.db.store.evidence import append_evidence
from gateway.agencies import ACTIVE, CLOSED, DELETED, MERGED, OPERATOR_OWNED, RETIRED
from gateway.codes import code_level
from gateway.delivery_states import FOLLOW_A_MERGE, can_transition
from gateway.delivery_states import DeliveryState as S
from gateway.directory_sync import MergeOutcome
from gateway.errors import (
    AgencyHasSubUnits,
    AgencyMergedOrDissolved,
    AgencyNotFound,
    InvalidRequest,
)
from gateway.evidence import EvidenceEvent
from gateway.records import (
    AgencyRecord,
    AgencyRegistration,
    DirectoryChange,
    DirectoryUnit,
    RecipientPlan,
)
from gateway.types import AgencyCode, RouteKind

LOOKUP_CHUNK = 5000
"""Codes per `IN (…)`: both backends cap the parameters of one statement (~32k)."""


class Versions:
    """The next directory versions, handed out while the counter row is locked."""

    def __init__(self, row: DirectoryVersion) -> None:
        self._row = row

    def take(self) -> int:
        self._row.value += 1
        return self._row.value

    def take_many(self, count: int) -> range:
        """`count` consecutive versions (one bulk write)."""
        first = self._row.value + 1
        self._row.value += count
        return range(first, first + count)


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
        peer=row.peer,
    )


def _changed(row: Agency, fields: dict[str, Any]) -> bool:
    return any(getattr(row, name) != value for name, value in fields.items())


AGENCIES = table(Agency)
WRITTEN = ("name", "parent_code", "mail", "status", "successor_code", "old_code", "level", "peer")
"""The columns a bulk write sets (with `version` and `updated_at`)."""
COMPARED = WRITTEN[:-1]
"""What makes a row changed: not `peer` (an unchanged row stays with whoever taught it)."""

BULK_UPDATE_PG = text(
    "UPDATE agencies SET name = b.name, parent_code = b.parent_code, mail = b.mail, "
    "status = b.status, successor_code = b.successor_code, old_code = b.old_code, "
    "level = b.level, peer = b.peer, version = b.version, updated_at = b.updated_at "
    "FROM unnest(CAST(:id AS BIGINT[]), CAST(:name AS VARCHAR[]), "
    "CAST(:parent_code AS VARCHAR[]), CAST(:mail AS VARCHAR[]), CAST(:status AS VARCHAR[]), "
    "CAST(:successor_code AS VARCHAR[]), CAST(:old_code AS VARCHAR[]), "
    "CAST(:level AS INTEGER[]), CAST(:peer AS VARCHAR[]), CAST(:version AS BIGINT[]), "
    "CAST(:updated_at AS TIMESTAMPTZ[])) AS b(id, name, parent_code, mail, status, "
    "successor_code, old_code, level, peer, version, updated_at) WHERE agencies.id = b.id"
)
"""PostgreSQL: changed rows in one statement per batch (an executemany is a round trip a row)."""
BULK_UPDATE_SQLITE = (
    update(AGENCIES)
    .where(AGENCIES.c.id == bindparam("b_id"))
    .values({name: bindparam(name) for name in (*WRITTEN, "version", "updated_at")})
)
WRITE_BATCH = 5000


async def known_agencies(session: AsyncSession, codes: Sequence[str]) -> dict[str, Row[Any]]:
    """The rows of `codes` this node has: id, the written columns, version."""
    columns = [AGENCIES.c.id, AGENCIES.c.code, AGENCIES.c.version]
    columns += [AGENCIES.c[name] for name in WRITTEN]
    known: dict[str, Row[Any]] = {}
    for chunk in _chunks(codes):
        rows = await session.execute(select(*columns).where(AGENCIES.c.code.in_(chunk)))
        known.update((row.code, row) for row in rows.all())
    return known


def differs(row: Row[Any], fields: dict[str, Any]) -> bool:
    return any(getattr(row, name) != fields[name] for name in COMPARED)


async def write_agencies(
    session: AsyncSession,
    versions: Versions,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    now: datetime,
) -> None:
    """New rows (`code` + WRITTEN) and changed ones (`id` + WRITTEN), each with its own new
    version, in a few statements; the configuration version is bumped when anything changed."""
    if not inserts and not updates:
        return
    taken = versions.take_many(len(inserts) + len(updates))
    for row, version in zip(itertools.chain(inserts, updates), taken, strict=True):
        row["version"], row["updated_at"] = version, now
    for start in range(0, len(inserts), WRITE_BATCH):
        await session.execute(insert(AGENCIES), inserts[start : start + WRITE_BATCH])
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(updates), WRITE_BATCH):
        batch = updates[start : start + WRITE_BATCH]
        if postgres:
            await session.execute(
                BULK_UPDATE_PG, {name: [row[name] for row in batch] for name in batch[0]}
            )
        else:
            await session.execute(
                BULK_UPDATE_SQLITE,
                [
                    {**{k: v for k, v in row.items() if k != "id"}, "b_id": row["id"]}
                    for row in batch
                ],
            )
    await bump_config(session)


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
        not make every peer sync it all again). A changed row becomes this node's own
        (`peer` cleared: `gateway.directory_sync` rule 2); an unchanged one stays with the
        peer that taught it. A code given twice: the last one wins. Returns (added, updated).

        Core statements, not ORM objects: the national directory (111,000 rows) in seconds."""
        wanted = {record.code: record for record in records}
        now = utcnow()
        async with self.transaction() as session:
            versions = await self._versions(session)
            known = await known_agencies(session, list(wanted))
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for code, record in wanted.items():
                fields: dict[str, Any] = dict(
                    name=record.name,
                    parent_code=record.parent_code,
                    mail=record.mail,
                    status=record.status,
                    successor_code=record.successor_code,
                    old_code=record.old_code,
                    level=code_level(code),
                )
                row = known.get(code)
                if row is None:
                    inserts.append({"code": code, **fields, "peer": None})
                elif differs(row, fields):
                    updates.append({"id": row.id, **fields, "peer": None})
            await write_agencies(session, versions, inserts, updates, now)
        return len(inserts), len(updates)

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

    async def directory_units(
        self, after_version: int = 0, limit: int | None = None
    ) -> list[DirectoryUnit]:
        """Every row whose version is above `after_version` (the first `limit` of them),
        tombstones included, in version order (the last one's version is where the
        caller's next page or sync starts). Columns, not ORM objects: a full sync of the
        national directory reads 111,000 rows."""
        parent = aliased(Agency)
        query = (
            select(
                Agency.id,
                parent.id.label("parent_id"),
                Agency.code,
                Agency.name,
                Agency.mail,
                Agency.status,
                Agency.version,
                Agency.updated_at,
                Agency.parent_code,
                Agency.successor_code,
                Agency.old_code,
            )
            .outerjoin(parent, parent.code == Agency.parent_code)
            .where(Agency.version > after_version)
            .order_by(Agency.version)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(query)).all()
        return [
            DirectoryUnit(
                id=row.id,
                parent_id=row.parent_id,
                code=AgencyCode(row.code),
                name=row.name,
                mail=row.mail,
                status=row.status,
                version=row.version,
                modified_at=row.updated_at,
                parent_code=row.parent_code,
                successor_code=row.successor_code,
                old_code=row.old_code,
            )
            for row in rows
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
                peer=None,
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
            await refuse_live_sub_units(session, code, "sub-units", "delete them first")
            previous = row.status
            row.status, row.version, row.updated_at = DELETED, versions.take(), now
            row.peer = None
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

    # -- reorganisation: operators' changes (`lienthong agencies merge|rename|retire`) -------

    async def merge_agency(
        self, old: str, new: str, plan: RecipientPlan | None, actor: str
    ) -> MergeOutcome:
        """OLD becomes `merged` with successor NEW (a new version; the row is this node's
        own from now on), and what is still pending to OLD and was not downloaded follows:
        re-pointed to the successor's route as `plan` says (`queued` again, with a new
        outbox row and a timeline row saying why), or cancelled when the package has its own
        delivery to the successor. One transaction: the merge and the deliveries move
        together. Refused when something is pending and no route reaches the successor."""
        now = utcnow()
        async with self.transaction() as session:
            versions = await self._versions(session)
            rows = {
                row.code: row
                for row in (
                    await session.scalars(select(Agency).where(Agency.code.in_([old, new])))
                ).all()
            }
            source, target = rows.get(old), rows.get(new)
            if source is None:
                raise AgencyNotFound(f"no agency {old} in the directory")
            if target is None:
                raise AgencyNotFound(f"no agency {new} in the directory: add or import it first")
            for row in (source, target):
                if row.status in CLOSED:
                    raise InvalidRequest(f"{row.code} is {row.status}: only live agencies merge")
            successor = plan.recipient_code if plan is not None else new
            change = "unchanged"
            if source.status != MERGED or source.successor_code != new:
                change = "merged"
                source.status, source.successor_code, source.peer = MERGED, new, None
                source.version, source.updated_at = versions.take(), now
            pending = (
                await session.scalars(
                    select(Delivery)
                    .where(
                        Delivery.recipient_code == old,
                        Delivery.state.in_(state_values(FOLLOW_A_MERGE)),
                        Delivery.downloaded_at.is_(None),
                    )
                    .order_by(Delivery.id)
                    .with_for_update()
                )
            ).all()
            if pending and plan is None:
                raise InvalidRequest(
                    f"{len(pending)} deliveries to {old} are pending and no system or peer "
                    f"serves {successor}: connect it first (nothing was changed)"
                )
            has_own = set()
            if pending:
                has_own = set(
                    (
                        await session.scalars(
                            select(Delivery.message_id).where(
                                Delivery.recipient_code == successor,
                                Delivery.message_id.in_({d.message_id for d in pending}),
                            )
                        )
                    ).all()
                )
            route = _route_text(plan)
            redirected: list[str] = []
            cancelled: list[str] = []
            left: list[tuple[str, str]] = []
            for delivery in pending:
                assert plan is not None
                if delivery.message_id in has_own:
                    transition(
                        session,
                        delivery,
                        S.CANCELLED,
                        actor,
                        f"{old} merged into {new}: {successor} has its own delivery of this "
                        "package",
                        now,
                    )
                    cancelled.append(delivery.public_id)
                    continue
                if not can_transition(S(delivery.state), S.QUEUED):
                    left.append((delivery.public_id, f"{delivery.state}: cannot be re-routed"))
                    continue
                transition(
                    session,
                    delivery,
                    S.QUEUED,
                    actor,
                    f"{old} merged into {new}: re-routed to {successor} ({route}); was "
                    f"{delivery.route} {delivery.peer or delivery.system_id}",
                    now,
                )
                delivery.recipient_code = successor
                delivery.route, delivery.system_id, delivery.peer = (
                    plan.route.value,
                    plan.system_id,
                    plan.peer,
                )
                delivery.lease_until = delivery.next_offer_at = delivery.next_attempt_at = None
                session.add(
                    OutboxEntry(
                        delivery_id=delivery.id,
                        routing_key=plan.routing_key,
                        payload=json.dumps(
                            {"delivery": delivery.public_id, "route": plan.route.value}
                        ),
                        created_at=now,
                    )
                )
                redirected.append(delivery.public_id)
            if change == "unchanged" and not pending:
                return MergeOutcome(old, new, successor, change, source.version, route=route)
            await bump_config(session)
            await append_evidence(
                session,
                EvidenceEvent.AGENCY_MERGED,
                actor,
                now,
                details={
                    "code": old,
                    "into": new,
                    "successor": successor,
                    "version": source.version,
                    "change": change,
                    "redirected": len(redirected),
                    "cancelled": len(cancelled),
                    "deliveries": (redirected + cancelled)[:100],
                },
            )
            return MergeOutcome(
                old,
                new,
                successor,
                change,
                source.version,
                tuple(redirected),
                tuple(cancelled),
                tuple(left),
                route,
            )

    async def rename_agency(self, code: str, name: str, actor: str) -> DirectoryChange:
        """A new name for the same code (a new version; the row is this node's own now)."""
        now = utcnow()
        async with self.transaction() as session:
            versions = await self._versions(session)
            row = await session.scalar(select(Agency).where(Agency.code == code))
            if row is None:
                raise AgencyNotFound(f"no agency {code} in the directory")
            if row.name == name:
                return DirectoryChange(AgencyCode(code), "unchanged", row.version)
            previous = row.name
            row.name, row.peer = name, None
            row.version, row.updated_at = versions.take(), now
            await bump_config(session)
            await append_evidence(
                session,
                EvidenceEvent.AGENCY_RENAMED,
                actor,
                now,
                details={"code": code, "version": row.version, "name": name, "was": previous},
            )
            return DirectoryChange(AgencyCode(code), "renamed", row.version)

    async def retire_agency(self, code: str, actor: str) -> DirectoryChange:
        """Close the code (`retired`: a tombstone peers sync; packages to it are refused with
        RECIPIENT_CLOSED). What was already accepted for it is still delivered. A unit with
        live sub-units is refused, as `deleteAgency` refuses it."""
        now = utcnow()
        async with self.transaction() as session:
            versions = await self._versions(session)
            row = await session.scalar(select(Agency).where(Agency.code == code))
            if row is None:
                raise AgencyNotFound(f"no agency {code} in the directory")
            if row.status == RETIRED:
                return DirectoryChange(AgencyCode(code), "unchanged", row.version)
            await refuse_live_sub_units(
                session, code, "live sub-units", "merge or retire them first"
            )
            previous = row.status
            row.status, row.successor_code, row.peer = RETIRED, None, None
            row.version, row.updated_at = versions.take(), now
            await bump_config(session)
            await append_evidence(
                session,
                EvidenceEvent.AGENCY_RETIRED,
                actor,
                now,
                details={
                    "code": code,
                    "version": row.version,
                    "name": row.name,
                    "previous_status": previous,
                },
            )
            return DirectoryChange(AgencyCode(code), "retired", row.version)


def _route_text(plan: RecipientPlan | None) -> str:
    if plan is None:
        return "no route"
    if plan.route is RouteKind.PEER:
        return f"peer {plan.peer}"
    return f"{plan.route.value} of {plan.system_id}"


async def refuse_live_sub_units(session: AsyncSession, code: str, what: str, advice: str) -> None:
    """A unit with live sub-units cannot close: they would hang under a unit that no longer
    exists (the refusal names up to five of them)."""
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
        raise AgencyHasSubUnits(f"{code} still has {what} ({shown}): {advice}")
