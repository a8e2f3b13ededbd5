"""Signature settings in the store: policy overrides per system and per agency, and the
certificates registered for agencies (`gateway.signatures` decides what they mean)."""

from __future__ import annotations

from sqlalchemy import or_, select

from adapters.db.models import Agency, AgencyCertificate, System
from adapters.db.store.base import SqlBase
from gateway.errors import NotFound
from gateway.signatures import CertificateBinding


class SqlPolicies(SqlBase):
    async def signature_policies(
        self, system_id: str, agency_code: str
    ) -> tuple[str | None, str | None]:
        """(system's, agency's) signature policy overrides; None where unset."""
        async with self.transaction(read_only=True) as session:
            system = await session.scalar(
                select(System.signature_policy).where(System.system_id == system_id)
            )
            agency = await session.scalar(
                select(Agency.signature_policy).where(Agency.code == agency_code)
            )
        return system, agency

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

    async def add_binding(
        self, agency_code: str, fingerprint: str | None, subject: str | None
    ) -> None:
        async with self.transaction() as session:
            session.add(
                AgencyCertificate(agency_code=agency_code, fingerprint=fingerprint, subject=subject)
            )

    async def certificate_bindings(
        self, agency_code: str, fingerprint: str | None
    ) -> list[CertificateBinding]:
        """Bindings of the sender, and any binding the signer's certificate could match."""
        async with self.transaction(read_only=True) as session:
            rows = (
                await session.scalars(
                    select(AgencyCertificate).where(
                        or_(
                            AgencyCertificate.agency_code == agency_code,
                            AgencyCertificate.fingerprint == (fingerprint or "").lower(),
                            AgencyCertificate.subject.is_not(None),
                        )
                    )
                )
            ).all()
        return [CertificateBinding(r.agency_code, r.fingerprint, r.subject) for r in rows]
