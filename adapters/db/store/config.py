"""The configuration snapshot in the store (`gateway.config`): the version every writer of
systems, credentials, policies, bindings and the directory bumps, and the one read that
builds a snapshot.

`bump_config` runs in the writer's transaction: the row stays locked until it commits, so
versions become visible in the order they were taken, and a process that reads the version
and then the data can only find data newer than the version it read (an extra reload),
never older.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import Agency, AgencyCertificate, ConfigVersion, Peer, System
from gateway.agencies import CLOSED
from gateway.codes import ServePattern
from gateway.config import NodeConfig, SystemEntry
from gateway.peers import PeerRecord
from gateway.records import SystemRecord
from gateway.signatures import CertificateBinding
from gateway.types import SystemId

CONFIG_CHANGED = "lienthong_config_changed"
"""`session.info` flag: this transaction bumped the version (the helper tells the cache)."""

VERSION_QUERY = "SELECT version FROM config_version WHERE id = 1"


async def bump_config(session: AsyncSession) -> None:
    """Take the next configuration version in this (writing) transaction."""
    result = await session.execute(
        update(ConfigVersion)
        .where(ConfigVersion.id == 1)
        .values(version=ConfigVersion.version + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 1) == 0:
        raise RuntimeError("config_version is missing: run `lienthong migrate`")
    session.info[CONFIG_CHANGED] = True


async def read_version(session: AsyncSession) -> int:
    version = await session.scalar(select(ConfigVersion.version).where(ConfigVersion.id == 1))
    if version is None:
        raise RuntimeError("config_version is missing: run `lienthong migrate`")
    return int(version)


async def load_config(session: AsyncSession, open_secret: Callable[[str], str]) -> NodeConfig:
    """Everything the hot path reads, version first (see the module's note)."""
    version = await read_version(session)
    systems = {
        row.system_id: SystemEntry(
            SystemRecord(
                system_id=SystemId(row.system_id),
                patterns=tuple(ServePattern.parse(p) for p in row.serves),
                delivery_mode=row.delivery_mode,
                enabled=row.enabled,
                push_url=row.push_url,
                previous_secret_until=row.previous_secret_until
                if row.previous_secret_ciphertext
                else None,
            ),
            row.secret_ciphertext,
            row.signature_policy,
            row.previous_secret_ciphertext,
            row.previous_secret_until,
        )
        for row in (
            await session.execute(
                select(
                    System.system_id,
                    System.secret_ciphertext,
                    System.previous_secret_ciphertext,
                    System.previous_secret_until,
                    System.serves,
                    System.delivery_mode,
                    System.enabled,
                    System.signature_policy,
                    System.push_url,
                )
            )
        ).all()
    }
    policies = {
        row.code: row.signature_policy
        for row in (
            await session.execute(
                select(Agency.code, Agency.signature_policy).where(
                    Agency.signature_policy.is_not(None)
                )
            )
        ).all()
    }
    bindings = tuple(
        CertificateBinding(row.agency_code, row.fingerprint, row.subject)
        for row in (
            await session.execute(
                select(
                    AgencyCertificate.agency_code,
                    AgencyCertificate.fingerprint,
                    AgencyCertificate.subject,
                ).order_by(AgencyCertificate.id)
            )
        ).all()
    )
    successors = {
        row.code: row.successor_code
        for row in (
            await session.execute(
                select(Agency.code, Agency.successor_code).where(
                    Agency.status == "merged", Agency.successor_code.is_not(None)
                )
            )
        ).all()
    }
    closed = {
        row.code: row.status
        for row in (
            await session.execute(
                select(Agency.code, Agency.status).where(Agency.status.in_(sorted(CLOSED)))
            )
        ).all()
    }
    peers = {
        row.name: PeerRecord(
            name=row.name,
            url=row.url,
            system_id=row.system_id,
            prefixes=tuple(ServePattern.parse(p) for p in row.prefixes),
            is_default=row.is_default,
            enabled=row.enabled,
        )
        for row in (
            await session.execute(
                select(
                    Peer.name,
                    Peer.url,
                    Peer.system_id,
                    Peer.prefixes,
                    Peer.is_default,
                    Peer.enabled,
                )
            )
        ).all()
    }
    return NodeConfig(
        version=version,
        peers=peers,
        systems=systems,
        agency_policies=policies,
        bindings=bindings,
        successors=successors,
        closed=closed,
        open_secret=open_secret,
    )
