"""A real `lienthong serve` process on loopback with systems, operators and a few packages,
for fuzzers that talk HTTP like any client (schemathesis' own transport, requests).

A subprocess rather than the in-process app: its lifespan runs as in production, its log is
its own (every ERROR line is a finding), its memory is its own, and nothing of schemathesis'
threads and event loops mixes with the test session's loop.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from adapters.vxp_client import VxpClient
from gateway.operators import Operator, Role, new_token, token_hash
from gateway.runtime import build_store
from gateway.services.directory import add_system
from tests.support.nodes import Backing
from tests.support.processes import GatewayProcess
from tests.support.samples import document

SENDER, RECEIVER, BYSTANDER = "000.00.01.H53", "000.00.02.H53", "000.00.03.H53"
SETUP = Operator("fuzz-setup", Role.ADMIN)


@dataclass
class Credentials:
    """`Authorization` header values by who presents them."""

    sender: str
    receiver: str
    bystander: str
    admin: str
    auditor: str

    def wrong(self) -> list[str]:
        """Credentials that must never authenticate: a wrong secret or token, the right one
        of the other kind of caller, malformed schemes."""
        system_id, _, _ = self.sender.removeprefix("Bearer ").rpartition(":")
        operator, _, _ = self.admin.removeprefix("Bearer ").partition(":")
        return [
            f"Bearer {system_id}:not-the-secret",
            f"Bearer {operator}:not-the-token",
            "Bearer ",
            "Bearer :",
            "Basic c3lzOnNlY3JldA==",
            "bearer",
            "Bearer a:b:c",
        ]


@dataclass
class Served:
    process: GatewayProcess
    credentials: Credentials
    known: dict[str, list[str]] = field(default_factory=dict)
    """Path parameter name → values that name something that exists (the fuzzer mixes them
    with generated ones so that requests reach past the 404s)."""

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")


ERROR_LINE = re.compile(r"^.*\b(ERROR|CRITICAL)\b.*$|^Traceback", re.M)


def errors_in(log: str) -> list[str]:
    """ERROR/CRITICAL lines and tracebacks of a gateway log."""
    return [m.group(0) for m in ERROR_LINE.finditer(log)]


async def start_served(backing: Backing) -> Served:
    """Systems and operators first (directly in the database), then the process, then a
    document from the sender to the receiver, delivered and waiting in the inbox."""
    store = build_store(backing.settings())
    try:
        secrets = {
            name: await add_system(store, f"fuzz.{name}", [code])
            for name, code in (("sender", SENDER), ("receiver", RECEIVER), ("bystander", BYSTANDER))
        }
        tokens = {}
        for name, role in (("admin", Role.ADMIN), ("auditor", Role.AUDITOR)):
            tokens[name] = new_token()
            await store.add_operator(f"fuzz.{name}", role, token_hash(tokens[name]), SETUP)
    finally:
        await store.close()
    process = GatewayProcess(backing.environment(), backing.data_dir / "gateway.log")
    try:
        await process.wait_ready()
        credentials = Credentials(
            **{name: f"Bearer fuzz.{name}:{secret}" for name, secret in secrets.items()},
            **{name: f"Bearer fuzz.{name}:{token}" for name, token in tokens.items()},
        )
        served = Served(process, credentials)
        await _seed(served, secrets)
    except BaseException:
        process.stop()
        raise
    return served


async def _seed(served: Served, secrets: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        sender = VxpClient(http, "fuzz.sender", secrets["sender"])
        package = document(SENDER, [RECEIVER])
        answer = await sender.send_edoc(package, SENDER)
        assert answer["status"] == "OK", answer
        message_id = str(answer["DocId"])
        receiver = {"Authorization": served.credentials.receiver}
        for _ in range(300):
            items = (await http.get("/api/v1/inbox", headers=receiver)).json()["items"]
            if items:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the seeded package never reached the inbox")
        served.known = {
            "message_id": [message_id],
            "delivery_id": [items[0]["delivery_id"]],
            "position": ["1"],
        }
