"""The VNPT client SDK (SDKVXP 2.0.1) as far as tests need it: its sticky header map and the
way it parses every answer (SPEC §4.1), written from the SDK's behaviour, not from the node.

`sdk_parse` reads each field the SDK method reads and casts it the way the SDK does; a field
that is missing, `null` or of another JSON type is what makes the real SDK throw and hand its
caller all-null results, so here it raises `SdkParseError`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import httpx

from adapters.vxp_client import SDK_HEADERS, sdk_hex, sdk_timestamp

ENVELOPE = {"status": str, "ErrorCode": str, "ErrorDesc": str}
RECEIVED: dict[str, type] = {
    name: str
    for name in (
        "docId",
        "serviceType",
        "messageType",
        "created_time",
        "updated_time",
        "from",
        "to",
        "status",
        "status_desc",
    )
}
SENT: dict[str, type] = {
    name: str
    for name in (
        "serviceType",
        "messageType",
        "senderDocId",
        "receiverDocId",
        "fromCode",
        "toCode",
        "title",
        "notation",
        "sentTime",
        "receivedTime",
        "sendStatus",
        "sendStatusDesc",
        "receiveStatus",
        "receiveStatusDesc",
    )
}
AGENCY: dict[str, type] = {name: str for name in ("id", "pid", "code", "name", "mail", "oldCode")}
AGENCY_QD20: dict[str, type] = {name: str for name in ("id", "code", "name", "mail", "code102")}
SYNC_UNIT: dict[str, type] = {
    **{name: str for name in ("id", "pid", "code", "name", "mail", "centerCode", "modifyDate")},
    "version": int,
    "deleted": bool,
    "isAgency": bool,
}

READS: dict[str, tuple[dict[str, type], dict[str, type] | None]] = {
    "sendEdoc": ({"DocId": str}, None),
    "getReceivedEdocList": ({"data": list}, RECEIVED),
    "getEdoc": ({"data": str}, None),
    "updateStatus": ({}, None),
    "getSentEdocList": ({"data": list}, SENT),
    "countReceiveEdoc": ({"count": int}, None),
    "countReceiveStatus": ({"count": int}, None),
    "getAgenciesList": ({"data": list}, AGENCY),
    "getAgenciesListQD20": ({"data": list}, AGENCY_QD20),
    "getSynchronizeUnit": ({"data": list}, SYNC_UNIT),
    "registerAgency": ({}, None),
    "deleteAgency": ({}, None),
}
"""Operation → (answer fields the SDK reads, fields it reads in each `data` entry)."""


class SdkParseError(AssertionError):
    """The real SDK would throw here and return status, code and description all null."""


def _read(where: str, body: dict[str, Any], fields: dict[str, type]) -> None:
    for name, kind in fields.items():
        if name not in body or body[name] is None:
            raise SdkParseError(f"{where}: field {name!r} is missing or null in {body}")
        value = body[name]
        # JSON booleans are not integers to Jackson's asInt/asBoolean callers.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise SdkParseError(
                f"{where}: field {name!r} is {type(value).__name__}, the SDK "
                f"reads it as {kind.__name__}: {value!r}"
            )


def sdk_parse(operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """Parse an answer as the SDK method of `operation` does; returns it when it would parse."""
    fields, entry = READS[operation]
    _read(operation, body, {**ENVELOPE, **fields})
    if body["status"] not in ("OK", "FAIL"):
        raise SdkParseError(f"{operation}: status {body['status']!r}")
    if entry is not None:
        for index, item in enumerate(body["data"]):
            if not isinstance(item, dict):
                raise SdkParseError(f"{operation}: data[{index}] is not an object")
            _read(f"{operation} data[{index}]", item, entry)
    return body


class StickySdkClient:
    """One SDK client object: its timestamp is fixed when built and its header map keeps
    every header ever set, each spelling of a name as its own key (SPEC §4.1)."""

    def __init__(
        self, http: httpx.AsyncClient, system_id: str, secret: str, prefix: str = "/vxp"
    ) -> None:
        self._http = http
        self._secret = secret
        self._prefix = prefix
        self.headers: dict[str, str] = {
            "XroadVnpt-systemid": system_id,
            "XroadVnpt-timestamp": sdk_timestamp(datetime.now()),
        }

    def _signed(self, params: dict[str, str], content_type: str) -> list[tuple[str, bytes]]:
        self.headers.update({f"XroadVnpt-{name}": value for name, value in params.items()})
        self.headers["XroadVnpt-Content-Type"] = content_type
        sign_header = json.dumps(self.headers, ensure_ascii=False, separators=(",", ":"))
        mac = hmac.new(self._secret.encode(), sign_header.encode(), hashlib.sha256).hexdigest()
        raw = [(name, value.encode()) for name, value in self.headers.items()]
        return (
            raw
            + [(name, value.encode()) for name, value in SDK_HEADERS.items()]
            + [
                ("Content-Type", content_type.encode()),
                (
                    "XroadVnpt-sign-header-key",
                    ";".join(n[len("XroadVnpt-") :] for n in self.headers).encode(),
                ),
                ("XroadVnpt-sign-header", sign_header.encode()),
                ("XroadVnpt-hash-header", mac.encode()),
            ]
        )

    async def call(
        self,
        operation: str,
        params: dict[str, str] | None = None,
        body: bytes = b"{}",
        content_type: str = "application/json",
        method: str = "POST",
    ) -> httpx.Response:
        request = self._http.build_request(method, f"{self._prefix}/{operation}", content=body)
        host = request.headers["Host"]
        signed = self._signed(params or {}, content_type)
        request.headers = httpx.Headers([(name.encode(), value) for name, value in signed])
        request.headers["Host"] = host
        request.headers["Content-Length"] = str(len(body))
        return await self._http.send(request)

    async def parsed(
        self,
        operation: str,
        params: dict[str, str] | None = None,
        body: bytes = b"{}",
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        response = await self.call(operation, params, body, content_type)
        return sdk_parse(operation, response.json())

    async def send_edoc(
        self, package: bytes, from_code: str, messagetype: str = "edoc", **extra: str
    ) -> dict[str, Any]:
        digest = hashlib.sha256(package).digest()
        return await self.parsed(
            "sendEdoc",
            {
                "from": from_code,
                "servicetype": "eDoc",
                "messagetype": messagetype,
                "hash-file": sdk_hex(digest),
                **extra,
            },
            package + b"\r\n",
            "application/octet-stream",
        )
