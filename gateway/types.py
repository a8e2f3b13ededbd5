"""The domain's vocabulary: the names everything else imports, so a reader meets each
concept once, here. The ports that adapters implement are in `gateway.ports`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

# Re-exported: these two ports used to live here, and some modules still import them so.
from gateway.ports import Broker as Broker
from gateway.ports import PayloadStore as PayloadStore

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
    PEER = "peer"
    """The node forwards it to the peer node that owns the code (`sendEdoc` on its /vxp)."""


@dataclass(frozen=True, slots=True)
class BrokerEnvelope:
    """One unit of work on the broker: 'make this delivery happen'."""

    routing_key: RoutingKey
    body: bytes
    message_id: str


BrokerHandler = Callable[[BrokerEnvelope], Awaitable[None]]
