"""What every `/vxp` answer carries, OK or FAIL (SPEC §4.1).

The VNPT SDK reads each field of an operation's answer without a null check: one missing or
`null` field makes it throw and hand its caller status, code and description all null (for a
list, the whole list is dropped). So every answer of an operation, a refusal included, carries
every field that operation's SDK method reads, with the JSON type it casts to. This table is the
one place that says which fields those are; the error handler and the routes both use it.
"""

from __future__ import annotations

import copy
from typing import Any

SUCCESS: dict[str, str] = {"status": "OK", "ErrorCode": "0", "ErrorDesc": "Thanh cong"}

OPERATION_FIELDS: dict[str, dict[str, Any]] = {
    "sendEdoc": {"DocId": ""},
    "getReceivedEdocList": {"data": []},
    "getEdoc": {"data": ""},
    "updateStatus": {},
    "getSentEdocList": {"data": []},
    "countReceiveEdoc": {"count": 0},
    "countReceiveStatus": {"count": 0},
    "getAgenciesList": {"data": []},
    "getAgenciesListQD20": {"data": []},
    "getSynchronizeUnit": {"data": []},
    "registerAgency": {},
    "deleteAgency": {},
}
"""Operation name (the last path segment) → its fields with their empty values."""

RECEIVED_ENTRY: dict[str, Any] = {
    "docId": "",
    "serviceType": "",
    "messageType": "",
    "created_time": "",
    "updated_time": "",
    "from": "",
    "to": "",
    "status": "",
    "status_desc": "",
}
SENT_ENTRY: dict[str, Any] = {
    "serviceType": "",
    "messageType": "",
    "senderDocId": "",
    "receiverDocId": "",
    "fromCode": "",
    "toCode": "",
    "title": "",
    "notation": "",
    "sentTime": "",
    "receivedTime": "",
    "sendStatus": "",
    "sendStatusDesc": "",
    "receiveStatus": "",
    "receiveStatusDesc": "",
    "receiveStatusTime": "",
}
AGENCY_ENTRY: dict[str, Any] = {
    "id": "",
    "pid": "",
    "code": "",
    "name": "",
    "mail": "",
    "oldCode": "",
}
AGENCY_QD20_ENTRY: dict[str, Any] = {"id": "", "code": "", "name": "", "mail": "", "code102": ""}
SYNC_UNIT_ENTRY: dict[str, Any] = {
    "id": "",
    "pid": "",
    "code": "",
    "name": "",
    "mail": "",
    "centerCode": "",
    "version": 0,
    "deleted": False,
    "modifyDate": "",
    "isAgency": True,
}
ENTRY_FIELDS: dict[str, dict[str, Any]] = {
    "getReceivedEdocList": RECEIVED_ENTRY,
    "getSentEdocList": SENT_ENTRY,
    "getAgenciesList": AGENCY_ENTRY,
    "getAgenciesListQD20": AGENCY_QD20_ENTRY,
    "getSynchronizeUnit": SYNC_UNIT_ENTRY,
}
"""Operation → the fields of each entry of its `data` list, with their empty values."""


def operation_of(path: str) -> str:
    """`/vxp/sendEdoc` → `sendEdoc` (what the SDK appends to its endpoint)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def fail_fields(operation: str) -> dict[str, Any]:
    """The operation's fields as a refusal carries them (fresh copies: lists are mutable)."""
    return copy.deepcopy(OPERATION_FIELDS.get(operation, {}))


def entry(operation: str, **values: Any) -> dict[str, Any]:
    """One `data` entry with every field the SDK reads; a `None` becomes the field's empty
    value, never JSON null."""
    shape = ENTRY_FIELDS[operation]
    unknown = set(values) - set(shape)
    if unknown:
        raise KeyError(f"{operation} entries have no field {sorted(unknown)}")
    return {
        name: (empty if values.get(name) is None else values[name]) for name, empty in shape.items()
    }


def answer(operation: str, **fields: Any) -> dict[str, Any]:
    """A success answer: SUCCESS, the operation's fields (empty unless given), extras last."""
    body: dict[str, Any] = {**SUCCESS, **fail_fields(operation)}
    for name, value in fields.items():
        body[name] = OPERATION_FIELDS.get(operation, {}).get(name, "") if value is None else value
    return body
