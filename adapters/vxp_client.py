"""A client of the national-axis protocol that puts on the wire what the VNPT SDK does.

Used by tests and benchmarks, and by a node that forwards to a peer (SPEC §3.5). Headers are
built per call (not sticky like the SDK's), signed the SDK's way: a JSON object of every
`XroadVnpt-*` header, HMAC-SHA256 with the system's secret; bodies get the SDK's CRLF.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import httpx

SDK_HEADERS = {"User-Agent": "JAVASDKAgent/1.0.0 XRoad/VPCP", "XroadVnpt-version": "3.0.201608"}


def sdk_hex(digest: bytes) -> str:
    return "".join(f"{byte:x}" for byte in digest)


def sdk_timestamp(at: datetime) -> str:
    return at.strftime("%d%m%YT%H%M%S") + f"+{at.microsecond // 1000:04d}"


class VxpClient:
    def __init__(
        self, http: httpx.AsyncClient, system_id: str, secret: str, prefix: str = "/vxp"
    ) -> None:
        self._http = http
        self.system_id = system_id
        self._secret = secret
        self._prefix = prefix
        self._timestamp = sdk_timestamp(datetime.now())  # fixed per client, as the SDK does

    def signed_headers(self, params: dict[str, str], content_type: str) -> dict[str, str]:
        headers = {"XroadVnpt-systemid": self.system_id, "XroadVnpt-servicetype": "eDoc"}
        headers.update({f"XroadVnpt-{name}": value for name, value in params.items()})
        headers["XroadVnpt-timestamp"] = self._timestamp
        headers["XroadVnpt-Content-Type"] = content_type
        sign_header = json.dumps(headers, ensure_ascii=False, separators=(",", ":"))
        return {
            **headers,
            "Content-Type": content_type,
            **SDK_HEADERS,
            "XroadVnpt-sign-header-key": ";".join(n[len("XroadVnpt-") :] for n in headers),
            "XroadVnpt-sign-header": sign_header,
            "XroadVnpt-hash-header": hmac.new(
                self._secret.encode(), sign_header.encode(), hashlib.sha256
            ).hexdigest(),
        }

    async def call(
        self,
        operation: str,
        params: dict[str, str] | None = None,
        body: bytes = b"",
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        response = await self._http.post(
            f"{self._prefix}/{operation}",
            content=body,
            headers=self.signed_headers(params or {}, content_type),
        )
        answer: dict[str, Any] = response.json()
        answer["_http_status"] = response.status_code
        return answer

    async def send_edoc(
        self, package: bytes, from_code: str, messagetype: str = "edoc"
    ) -> dict[str, Any]:
        digest = hashlib.sha256(package).digest()
        return await self.call(
            "sendEdoc",
            {"messagetype": messagetype, "hash-file": sdk_hex(digest), "from": from_code},
            package + b"\r\n",
            "application/octet-stream",
        )

    async def get_received(self, messagetype: str = "edoc") -> dict[str, Any]:
        return await self.call("getReceivedEdocList", {"messagetype": messagetype})

    async def get_edoc(self, doc_id: str) -> dict[str, Any]:
        return await self.call("getEdoc", {"docId": doc_id, "filePath": "xml"}, b"{}")

    async def update_status(self, doc_id: str, status: str) -> dict[str, Any]:
        return await self.call("updateStatus", {"docId": doc_id, "status": status}, b"{}")

    async def get_sent(self, doc_id: str | None = None) -> dict[str, Any]:
        return await self.call("getSentEdocList", {"docId": doc_id} if doc_id else {})

    async def get_agencies(self) -> dict[str, Any]:
        return await self.call("getAgenciesList")

    async def get_agencies_qd20(self, level: str | None = None) -> dict[str, Any]:
        return await self.call("getAgenciesListQD20", {"level": level} if level is not None else {})

    async def synchronize_units(self, from_version: str | None = None) -> dict[str, Any]:
        return await self.call(
            "getSynchronizeUnit", {"fromVersion": from_version} if from_version is not None else {}
        )

    async def register_agency(self, unit: dict[str, Any]) -> dict[str, Any]:
        """`unit` as the SDK sends it: `{id, pcode, code, name, mail, mobile, fax}`."""
        return await self.call("registerAgency", body=json.dumps(unit, ensure_ascii=False).encode())

    async def delete_agency(self, code: str) -> dict[str, Any]:
        return await self.call("deleteAgency", {"AgencyCode": code}, b"{}")
