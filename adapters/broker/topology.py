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

    def queues(self) -> list[tuple[str, str]]:
        """(queue, binding key) for every shard of every route this node consumes."""
        return [(self.shard_queue(route, k), self.shard_binding(route, k))
                for route in RouteKind for k in range(self.shards)]


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
