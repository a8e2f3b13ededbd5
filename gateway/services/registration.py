"""Systems registering and deleting their own sub-agencies (`registerAgency`, `deleteAgency`,
SPEC §3.5): only within the codes they serve, each change versioned and in the evidence log.

`pcode` means two things in real traffic: the SDK's own example and a provincial axis send the
caller's systemId (with `id` empty), other clients the parent agency's code. Both are accepted:
an agency in the directory becomes the parent; a systemId means "no parent given", and the unit
hangs under its nearest ancestor in the directory that its code names (`000.00.13.H53` under
`000.00.00.H53`), or is a root.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.agencies import DELETED
from gateway.codes import ancestor_codes, is_valid_code
from gateway.errors import AgencyInfoInvalid, AgencyOutsideSystem, InvalidRequest, Problem
from gateway.ports import Store
from gateway.records import AgencyRegistration, DirectoryChange, SystemRecord
from gateway.types import AgencyCode

FIELD_LIMITS: Mapping[str, int] = {
    "id": 64,
    "pcode": 64,
    "code": 35,
    "name": 500,
    "mail": 200,
    "mobile": 50,
    "fax": 50,
}
"""The body's fields and their longest accepted value (the directory's column sizes)."""


def _refused(problems: list[Problem]) -> InvalidRequest:
    return AgencyInfoInvalid(
        "; ".join(f"{p.path}: {p.message}" for p in problems), problems=problems
    )


def registration_fields(body: object) -> dict[str, str]:
    """The body's fields as stripped text ("" when absent or null); every field that is not
    text (or a number, which some clients send for `id`) or too long is named at once."""
    if not isinstance(body, dict):
        raise _refused(
            [
                Problem(
                    "BODY_INVALID",
                    "body",
                    "the body must be a JSON object {id, pcode, code, name, mail, mobile, fax}",
                )
            ]
        )
    fields: dict[str, str] = {}
    problems: list[Problem] = []
    for name, limit in FIELD_LIMITS.items():
        raw = body.get(name)
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, str | int)):
            problems.append(Problem("FIELD_INVALID", name, "must be text"))
            continue
        value = "" if raw is None else str(raw).strip()
        if len(value) > limit:
            problems.append(
                Problem(
                    "FIELD_TOO_LONG", name, f"is {len(value)} characters, at most {limit} allowed"
                )
            )
        fields[name] = value
    code = fields.get("code")
    if code == "":
        problems.append(Problem("FIELD_REQUIRED", "code", "the unit's identifier code is required"))
    elif code is not None and len(code) <= FIELD_LIMITS["code"] and not is_valid_code(code):
        problems.append(
            Problem(
                "CODE_INVALID",
                "code",
                f"{code!r} is not an identifier code (dot-separated groups of letters and digits)",
            )
        )
    if fields.get("name") == "":
        problems.append(Problem("FIELD_REQUIRED", "name", "the unit's name is required"))
    if problems:
        raise _refused(problems)
    return fields


def check_serves(system: SystemRecord, code: str, verb: str) -> None:
    if not system.serves(code):
        served = ", ".join(p.text for p in system.patterns)
        raise AgencyOutsideSystem(
            f"system {system.system_id} may {verb} only units within "
            f"the codes it serves ({served}), not {code}"
        )


async def parent_of(store: Store, system: SystemRecord, code: str, pcode: str) -> str | None:
    """An agency named by `pcode`, else (pcode empty or a systemId) the nearest ancestor
    the directory holds; a `pcode` that is neither an agency nor a system is refused rather
    than stored as a parent nobody can find."""
    if pcode == code:
        raise _refused([Problem("PARENT_INVALID", "pcode", "a unit cannot be its own parent")])
    ancestors = ancestor_codes(code)
    statuses = await store.agency_statuses([pcode, *ancestors] if pcode else ancestors)
    if pcode and pcode != system.system_id:
        if statuses.get(pcode, DELETED) != DELETED:
            return pcode
        if await store.get_system(pcode) is None:
            raise _refused(
                [
                    Problem(
                        "PARENT_UNKNOWN",
                        "pcode",
                        f"{pcode!r} is neither your systemId "
                        f"({system.system_id}) nor an agency in the directory",
                    )
                ]
            )
    return next((a for a in ancestors if statuses.get(a, DELETED) != DELETED), None)


async def register_agency(store: Store, system: SystemRecord, body: object) -> DirectoryChange:
    """Validate, check the caller serves the code, place the unit, and store it. `id` is
    read but not used: the code is the key (the SDK sends `id` empty)."""
    fields = registration_fields(body)
    code = AgencyCode(fields["code"])
    check_serves(system, code, "register")
    parent = await parent_of(store, system, code, fields["pcode"])
    return await store.register_agency(
        AgencyRegistration(
            code=code,
            name=fields["name"],
            parent_code=parent,
            mail=fields["mail"] or None,
            mobile=fields["mobile"] or None,
            fax=fields["fax"] or None,
        ),
        actor=f"system:{system.system_id}",
    )


async def delete_agency(store: Store, system: SystemRecord, code: str) -> DirectoryChange:
    code = code.strip()
    if not is_valid_code(code):
        raise _refused(
            [Problem("CODE_INVALID", "AgencyCode", f"{code[:40]!r} is not an identifier code")]
        )
    check_serves(system, code, "delete")
    return await store.delete_agency(code, actor=f"system:{system.system_id}")
