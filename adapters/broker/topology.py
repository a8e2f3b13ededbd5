"""Names and bindings shared by both brokers, so embedded and RabbitMQ route alike.

Never a queue per agency (../shared/STACK.md: ~85 KB per idle quorum queue, 111k agencies):
one topic exchange keyed `<route>.<reversed code>.s<shard>` feeds a fixed set of shard queues.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.types import RouteKind

TOPOLOGY_VERSION = "v1"  # queue arguments are immutable: a change means new queue names


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str
    shards: int
    retry_tiers: tuple[float, ...] = (10.0, 60.0, 300.0, 1800.0, 3600.0)
    """Seconds: one delay queue per tier and shard, whose expired messages go back to the
    route exchange under `push.retry.s<shard>` (no plugin needed, STACK.md)."""

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.route"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.namespace}.dead.{TOPOLOGY_VERSION}"

    def shard_queue(self, route: RouteKind, shard: int) -> str:
        return f"{self.namespace}.{route.value}.{TOPOLOGY_VERSION}.s{shard}"

    @staticmethod
    def shard_binding(route: RouteKind, shard: int) -> str:
        return f"{route.value}.#.s{shard}"

    def retry_queue(self, tier: float, shard: int) -> str:
        return f"{self.namespace}.retry.{TOPOLOGY_VERSION}.t{int(tier * 1000)}ms.s{shard}"

    @staticmethod
    def retry_routing_key(shard: int) -> str:
        return f"{RouteKind.PUSH.value}.retry.s{shard}"

    def tier_for(self, delay: float) -> float:
        """The shortest tier that is not shorter than `delay` (else the longest)."""
        return next((t for t in sorted(self.retry_tiers) if t >= delay), max(self.retry_tiers))

    @staticmethod
    def shard_of_key(routing_key: str) -> int:
        last = routing_key.rsplit(".", 1)[-1]
        return int(last[1:]) if last.startswith("s") and last[1:].isdigit() else 0

    def queues(self) -> list[tuple[str, str]]:
        """(queue, binding key) for every shard of every route this node consumes."""
        return [
            (self.shard_queue(route, k), self.shard_binding(route, k))
            for route in RouteKind
            for k in range(self.shards)
        ]


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` zero or more (as RabbitMQ does it)."""
    words, keys = pattern.split("."), key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(words):
            return j == len(keys)
        if words[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(keys) + 1))
        return j < len(keys) and words[i] in ("*", keys[j]) and match(i + 1, j + 1)

    return match(0, 0)
