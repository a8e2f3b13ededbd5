"""The domain's vocabulary: names and the ports that adapters implement.

Everything else imports these, so a reader meets each concept once, here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NewType, Protocol

AgencyCode = NewType("AgencyCode", str)
"""Electronic identifier code (mã định danh), e.g. `000.00.13.H53`."""
SystemId = NewType("SystemId", str)
"""A connected document system, e.g. `00.53.W00`."""
MessageId = NewType("MessageId", str)
"""What the sender gets back (`DocId`): one per accepted package."""
DeliveryId = NewType("DeliveryId", str)
"""What a recipient sees (`docId`): one per (package, recipient agency)."""
RoutingKey = NewType("RoutingKey", str)
Sha256Hex = NewType("Sha256Hex", str)


class MessageKind(StrEnum):
    """`messagetype` on the wire: a document package or a status package."""

    EDOC = "edoc"
    STATUS = "status"


class RouteKind(StrEnum):
    """Where a delivery goes once queued: bindings on the broker follow this first word."""

    INBOX = "inbox"
    """A local system polls for it."""
    PUSH = "push"
    """The node POSTs it to the system's endpoint."""


@dataclass(frozen=True, slots=True)
class BrokerEnvelope:
    """One unit of work on the broker: 'make this delivery happen'."""

    routing_key: RoutingKey
    body: bytes
    message_id: str


BrokerHandler = Callable[[BrokerEnvelope], Awaitable[None]]


class Broker(Protocol):
    """Carries work between the relay and the consumers; never the source of truth."""

    async def start(self) -> None:
        """Connect and declare the topology; may be called before the broker is reachable."""

    async def close(self) -> None: ...

    async def publish(self, envelope: BrokerEnvelope) -> None:
        """Return only once the broker has taken responsibility (publisher confirm).

        Raises `BrokerUnavailable` otherwise, so the caller keeps the outbox row unpublished.
        """

    async def consume(self, handler: BrokerHandler) -> None:
        """Start consumers; a handler that raises leaves the message to be delivered again."""

    async def publish_delayed(self, envelope: BrokerEnvelope, delay_seconds: float) -> None:
        """Deliver again after about `delay_seconds` (broker delay queues, not a sleep in a
        consumer); raises `BrokerUnavailable` like `publish`."""

    async def healthy(self) -> bool: ...


class PayloadStore(Protocol):
    """Content-addressed bytes: the database holds only hashes and sizes."""

    def put_file(self, path: Path, sha256: Sha256Hex) -> None:
        """Move a spooled file into the store under its hash (idempotent)."""

    def path_of(self, sha256: Sha256Hex) -> Path: ...

    def read(self, sha256: Sha256Hex) -> bytes: ...

    def exists(self, sha256: Sha256Hex) -> bool: ...
