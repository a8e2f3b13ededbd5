"""Background passes that run for the life of a process (peer polling, downstream reads)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from gateway.errors import ServiceUnavailable

log = logging.getLogger(__name__)


async def every(seconds: float, one_pass: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `one_pass` every `seconds` until cancelled. A database that is away pauses it
    (logged once a pass); any other failure is logged with its traceback and the next pass
    runs anyway: a bug in one pass must not stop the work for good."""
    while True:
        try:
            await one_pass()
        except ServiceUnavailable as error:
            log.warning("%s paused: %s", what, error)
        except Exception:
            log.exception("%s pass failed", what)
        await asyncio.sleep(seconds)
