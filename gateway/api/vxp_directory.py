"""The directory operations of the national-axis SDK on `/vxp` (SPEC §4.1, §3.5).

Lists (`getAgenciesList`, `getAgenciesListQD20`) show live units only; `getSynchronizeUnit`
shows every unit with its node-wide version, closed ones as tombstones (`deleted: true`), so
a peer syncs incrementally with `XroadVnpt-fromVersion`. Ids are the directory's row ids as
text, and every field the SDK reads is present with its JSON type (`vxp_answers`).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.agencies import is_closed
from gateway.api.deps import RuntimeDep
from gateway.api.vxp import _call, _wire_time
from gateway.api.vxp_answers import answer, entry
from gateway.codes import MAX_CODE_LENGTH
from gateway.directory_sync import Coverage
from gateway.errors import BodyMalformed, BodyTooLarge, ParameterInvalid
from gateway.services.registration import delete_agency, register_agency

router = APIRouter(prefix="/vxp", tags=["national axis (vxp)"])

MAX_JSON_BODY = 64 * 1024
"""A registration is a few hundred bytes; nothing bigger is read into memory."""


def _id(row_id: int | None) -> str:
    return "" if row_id is None else str(row_id)


MAX_LEVEL = (MAX_CODE_LENGTH + 1) // 2
"""A code has at most 35 characters, so at most 18 dot-separated groups."""
MAX_VERSION = 2**63 - 1
"""Directory versions are 64-bit (`BigInteger`)."""


def _whole_number(name: str, value: str | None, limit: int) -> int | None:
    """An optional integer parameter from 0 to `limit`; absent or empty means not given.
    Unbounded, `level: 99999999999999999999` reached the database as a number no column
    holds: SQLite raised OverflowError (500) and PostgreSQL failed the query like a lost
    connection (503), as `level: 3000000000` did against its 32-bit column."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(limit)) or int(text) > limit:
        raise ParameterInvalid(
            f"{name} must be a whole number from 0 to {limit}, not {text[:40]!r}", name=name
        )
    return int(text)


async def _json_body(request: Request) -> object:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BODY:
            raise BodyTooLarge(f"the body is larger than {MAX_JSON_BODY} bytes")
    try:
        parsed: object = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise BodyMalformed("the body is not UTF-8 JSON") from None
    return parsed


@router.post("/getAgenciesList")
async def get_agencies_list(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Live units (not retired or deleted); `pid` is `""` for a root."""
    await _call(request, runtime)
    agencies = await runtime.store.listed_agencies()
    return JSONResponse(
        answer(
            "getAgenciesList",
            data=[
                entry(
                    "getAgenciesList",
                    id=_id(a.id),
                    pid=_id(a.parent_id),
                    code=a.code,
                    name=a.name,
                    mail=a.mail,
                    oldCode=a.old_code,
                )
                for a in agencies
            ],
        )
    )


@router.post("/getAgenciesListQD20")
async def get_agencies_list_qd20(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Live units of one level (Decision 20/2020: the number of non-zero groups of the
    code), or all when `level` is absent or empty; `code102` is the old code."""
    call = await _call(request, runtime)
    level = _whole_number("level", call.param("level"), MAX_LEVEL)
    agencies = await runtime.store.listed_agencies(level)
    return JSONResponse(
        answer(
            "getAgenciesListQD20",
            data=[
                entry(
                    "getAgenciesListQD20",
                    id=_id(a.id),
                    code=a.code,
                    name=a.name,
                    mail=a.mail,
                    code102=a.old_code,
                )
                for a in agencies
            ],
        )
    )


MAX_PAGE = 1_000_000


@router.post("/getSynchronizeUnit")
async def get_synchronize_unit(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Every unit whose version is above `fromVersion` (all without it), in version order;
    with `pageSize`, the first that many of them (a peer pages through the national
    directory: the next page starts from the last version of this one). Without `pageSize`
    the answer is what SDK clients always got.

    Not `XroadVnpt-version`: the SDK sends that header on every call with its protocol
    version (`3.0.201608`), so a client could never set it to a sync position.

    Each entry also carries `parentCode`, `status`, `successorCode` and `oldCode`
    (extensions the SDK does not read): what a peer running this software needs to follow
    merges and parents incrementally (`gateway.directory_sync`)."""
    call = await _call(request, runtime)
    after = _whole_number("fromVersion", call.param("fromVersion"), MAX_VERSION) or 0
    page = _whole_number("pageSize", call.param("pageSize"), MAX_PAGE) or None
    units = await runtime.store.directory_units(after, page)
    coverage = Coverage(await runtime.store.list_systems(), ())
    return JSONResponse(
        answer(
            "getSynchronizeUnit",
            data=[
                entry(
                    "getSynchronizeUnit",
                    id=_id(u.id),
                    pid=_id(u.parent_id),
                    code=u.code,
                    name=u.name,
                    mail=u.mail,
                    centerCode=coverage.system_of(u.code),
                    version=u.version,
                    deleted=is_closed(u.status),
                    modifyDate=_wire_time(runtime, u.modified_at),
                    isAgency=True,
                )
                | {
                    "parentCode": u.parent_code or "",
                    "status": u.status,
                    "successorCode": u.successor_code or "",
                    "oldCode": u.old_code or "",
                }
                for u in units
            ],
        )
    )


@router.post("/registerAgency")
async def register(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Body `{id, pcode, code, name, mail, mobile, fax}`; see `gateway.services.registration`."""
    call = await _call(request, runtime)  # before reading the body: strangers send nothing
    await register_agency(runtime.store, call.system, await _json_body(request))
    return JSONResponse(answer("registerAgency"))


@router.post("/deleteAgency")
async def delete(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """`XroadVnpt-AgencyCode` becomes a tombstone; the body (`{}`) is not read."""
    call = await _call(request, runtime)
    await delete_agency(runtime.store, call.system, call.required("AgencyCode"))
    return JSONResponse(answer("deleteAgency"))
