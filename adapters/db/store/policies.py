"""Signature settings in the store: policy overrides per system and per agency, and the
certificates registered for agencies (`gateway.signatures` decides what they mean). Reads
come from the configuration snapshot (`gateway.config`); every change bumps its version."""

from __future__ import annotations

from sqlalchemy import select

from adapters.db.models import Agency, AgencyCertificate, System
from adapters.db.store.base import SqlBase
from adapters.db.store.config import bump_config
from gateway.errors import NotFound
from gateway.signatures import CertificateBinding


class SqlPolicies(SqlBase):
    async def signature_policies(
        self, system_id: str, agency_code: str
    ) -> tuple[str | None, str | None]:
        """(system's, agency's) signature policy overrides; None where unset."""
        return (await self.config()).signature_policies(system_id, agency_code)

    async def set_signature_policy(
        self, *, system_id: str | None = None, agency_code: str | None = None, policy: str | None
    ) -> None:
        async with self.transaction() as session:
            if system_id is not None:
                row: System | Agency | None = await session.scalar(
                    select(System).where(System.system_id == system_id)
                )
            else:
                row = await session.scalar(select(Agency).where(Agency.code == agency_code))
            if row is None:
                raise NotFound(f"no system or agency {system_id or agency_code}")
            row.signature_policy = policy
            await bump_config(session)

    async def add_binding(
        self, agency_code: str, fingerprint: str | None, subject: str | None
    ) -> None:
        async with self.transaction() as session:
            session.add(
                AgencyCertificate(agency_code=agency_code, fingerprint=fingerprint, subject=subject)
            )
            await bump_config(session)

    async def certificate_bindings(
        self, agency_code: str, fingerprint: str | None
    ) -> list[CertificateBinding]:
        """Bindings of the sender, and any binding the signer's certificate could match."""
        return (await self.config()).certificate_bindings(agency_code, fingerprint)
