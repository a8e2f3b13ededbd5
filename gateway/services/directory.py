"""Systems and the agency directory: what operators and the CLI manage."""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Sequence
from pathlib import Path

from gateway.agencies import STATUSES
from gateway.codes import ServePattern, is_valid_code
from gateway.errors import InvalidRequest
from gateway.operators import Operator
from gateway.ports import Store
from gateway.records import AgencyRecord
from gateway.types import AgencyCode

SYSTEM_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
MAX_SYSTEM_ID = 64


def is_system_id(value: str) -> bool:
    """What `add_system` registers: 1–64 letters, digits, '.', '-', '_'. Anything else
    names no system, so authentication need not ask the database about it."""
    return 0 < len(value) <= MAX_SYSTEM_ID and set(value) <= SYSTEM_ID_CHARS


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def add_system(
    store: Store,
    system_id: str,
    serves: Sequence[str],
    secret: str | None = None,
    push_url: str | None = None,
    by: Operator | None = None,
    reason: str | None = None,
) -> str:
    """Register a system; returns its secret (generated when not given). With `push_url`
    the node POSTs its packages there instead of waiting for it to poll. An operator's
    addition (`by`) is recorded in the audit trail."""
    if not is_system_id(system_id):
        raise InvalidRequest(f"system id {system_id!r}: use letters, digits, '.', '-', '_'")
    if not serves:
        raise InvalidRequest("a system must serve at least one code or pattern (--serves)")
    try:
        patterns = [ServePattern.parse(p).text for p in serves]
    except ValueError as error:
        raise InvalidRequest(str(error)) from None
    secret = secret or new_secret()
    if len(secret) < 8:
        raise InvalidRequest("a secret must have at least 8 characters")
    if push_url is not None and not push_url.startswith(("http://", "https://")):
        raise InvalidRequest(f"push URL {push_url!r} must be http:// or https://")
    await store.add_system(
        system_id,
        secret,
        patterns,
        delivery_mode="push" if push_url else "poll",
        push_url=push_url,
        by=by,
        reason=reason,
    )
    return secret


def read_agency_file(path: Path) -> list[AgencyRecord]:
    """CSV with header `code,name,parent,mail` (more columns allowed) or a JSON list of
    objects with those keys; every bad row is reported, with its line or index."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as error:
            raise InvalidRequest(f"{path}: not JSON ({error})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InvalidRequest(f"{path}: expected a JSON list of objects")
        labelled = [(f"item {i}", r) for i, r in enumerate(rows)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or not {"code", "name"} <= set(reader.fieldnames):
            raise InvalidRequest(f"{path}: the CSV header must include code,name,parent,mail")
        # line_num, not a count: DictReader skips blank lines and rows may span lines.
        labelled = [(f"line {reader.line_num}", r) for r in reader]
    return agency_records(labelled)


def agency_records(labelled: Sequence[tuple[str, dict[str, object]]]) -> list[AgencyRecord]:
    records: list[AgencyRecord] = []
    errors: list[str] = []
    for label, row in labelled:

        def field(name: str, row: dict[str, object] = row) -> str | None:
            value = row.get(name)
            return str(value).strip() or None if value is not None else None

        code, name = field("code"), field("name")
        parent, successor = field("parent"), field("successor")
        status = field("status") or "active"
        if not code or not is_valid_code(code):
            errors.append(f"{label}: code {code!r} is not a valid identifier code")
        elif not name:
            errors.append(f"{label}: name is required")
        elif parent and not is_valid_code(parent):
            errors.append(f"{label}: parent {parent!r} is not a valid identifier code")
        elif status not in STATUSES:
            errors.append(f"{label}: status must be one of {sorted(STATUSES)}")
        else:
            records.append(
                AgencyRecord(
                    code=AgencyCode(code),
                    name=name,
                    parent_code=parent,
                    mail=field("mail"),
                    status=status,
                    successor_code=successor,
                    old_code=field("oldCode") or field("old_code"),
                )
            )
    if errors:
        raise InvalidRequest(
            "; ".join(errors[:20]) + (f" (+{len(errors) - 20} more)" if len(errors) > 20 else "")
        )
    return records
