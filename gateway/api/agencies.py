"""`/api/v1/agencies`: the directory as a system reads it."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import CurrentSystem, RuntimeDep
from gateway.api.rest import PREFIX, TAG, AgencyOut

router = APIRouter(prefix=PREFIX, tags=[TAG])


@router.get("/agencies", response_model=list[AgencyOut])
async def list_agencies(
    runtime: RuntimeDep, _system: CurrentSystem, suffix: str | None = None
) -> list[AgencyOut]:
    """The directory; `suffix=H53` lists one province (codes read right to left)."""
    return [
        AgencyOut(
            code=a.code,
            name=a.name,
            parent_code=a.parent_code,
            mail=a.mail,
            status=a.status,
            successor_code=a.successor_code,
        )
        for a in await runtime.store.list_agencies(suffix)
    ]
