"""Fault points, for fault tests only: steps of the flow at which a gateway process stops dead
so that a test can kill it (SIGKILL) exactly there (SPEC §5: a gateway killed mid-flight loses
nothing and doubles nothing).

A point that is reached writes a marker file `<data_dir>/fault-<point>-<pid>` and then blocks
the thread of the event loop for good: nothing else in the process runs any more, exactly as
in a hang, so no relay publishes and no consumer commits behind the test's back. The test
waits for the marker and kills the process.

Points are enabled by `LIENTHONG_FAULT_POINTS`; when it names none, the runtime does not wrap
anything and this module costs nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from gateway.types import BrokerEnvelope, BrokerHandler

log = logging.getLogger(__name__)

AFTER_ACCEPT = "after-accept"
"""The accepting transaction has committed, the sender has no answer yet and the relay has not
been woken: the package exists only in the database (message, deliveries, outbox)."""
BEFORE_CONSUME_COMMIT = "before-consume-commit"
"""The inbox consumer has received a broker message (not acknowledged) and has not committed
the delivery's move to the inbox."""
AFTER_FORWARD_ANSWER = "after-forward-answer"
"""A peer node has answered a forward (it has the package), and this node has not recorded
it: the deliveries are still claimed, the broker message unacknowledged."""
WHILE_MIGRATING = "while-migrating"
"""`serve` has opened its listener and is about to migrate the database: the migration
thread stops here (the event loop goes on, so `/healthz` and `/readyz` answer: a migration
that takes for ever)."""
KNOWN_POINTS = frozenset(
    {AFTER_ACCEPT, BEFORE_CONSUME_COMMIT, AFTER_FORWARD_ANSWER, WHILE_MIGRATING}
)


def marker_path(data_dir: Path, point: str, pid: int) -> Path:
    return data_dir / f"fault-{point}-{pid}"


class FaultPoints:
    def __init__(self, points: frozenset[str], data_dir: Path) -> None:
        unknown = sorted(points - KNOWN_POINTS)
        if unknown:
            raise ValueError(f"unknown fault points {unknown}; known: {sorted(KNOWN_POINTS)}")
        self._points = points
        self._data_dir = data_dir

    def reach(self, point: str) -> None:
        """Stop the process here for good if `point` is enabled."""
        if point not in self._points:
            return
        pid = os.getpid()
        log.critical("fault point %s reached: process %d stops here until it is killed", point, pid)
        self._data_dir.mkdir(parents=True, exist_ok=True)
        marker_path(self._data_dir, point, pid).write_text(f"{pid}\n")
        while True:  # blocks the event loop on purpose: the whole process hangs
            time.sleep(3600)

    def before_callback(self, point: str, callback: Callable[[], None]) -> Callable[[], None]:
        def guarded() -> None:
            self.reach(point)
            callback()

        return guarded

    def before_handler(self, point: str, handler: BrokerHandler) -> BrokerHandler:
        async def guarded(envelope: BrokerEnvelope) -> None:
            self.reach(point)
            await handler(envelope)

        return guarded
