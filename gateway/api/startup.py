"""How a gateway process becomes ready: migrate the database (when `serve` migrates), build
and start the runtime, then serve.

`lienthong serve` (one process, without `--no-migrate`) opens its listener first and
migrates in the background: meanwhile `/healthz` answers (the process is alive: an
orchestrator must not kill it for a long migration), `/readyz` answers 503 `migrating`,
and every other route 503 (`SERVICE_UNAVAILABLE`, on `/vxp` as a FAIL 20). A migration that
fails stops the process (exit status 1). Without migration (`--no-migrate`, tests, each
worker of `serve --workers N`, whose supervisor migrates before it starts them) the runtime
starts before the first request is taken, as uvicorn's lifespan does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import StrEnum

from gateway.faults import WHILE_MIGRATING, FaultPoints
from gateway.runtime import Runtime, migrate_database
from gateway.settings import Settings
from gateway.telemetry import Telemetry

log = logging.getLogger(__name__)


class Phase(StrEnum):
    STARTING = "starting"
    MIGRATING = "migrating"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"


class Startup:
    def __init__(self, settings: Settings, telemetry: Telemetry, *, migrate: bool = False) -> None:
        self.settings = settings
        self.telemetry = telemetry
        self.migrate = migrate
        self.phase = Phase.STARTING
        self.runtime: Runtime | None = None
        self.on_failure: Callable[[], None] = lambda: None
        """Called when a background start failed (`serve` stops the server)."""

    async def run(self) -> Runtime:
        """Migrate if asked, then start the runtime; the phase says how far it got."""
        if self.migrate:
            self.phase = Phase.MIGRATING
            log.info("migrating the database")
            await asyncio.to_thread(self._migrate)
            log.info("the database is at the latest schema")
        runtime = Runtime(self.settings, self.telemetry)
        try:
            await runtime.start()
        except BaseException:
            await runtime.stop()
            raise
        self.runtime = runtime
        self.phase = Phase.READY
        log.info("ready")
        return runtime

    async def run_in_background(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.phase = Phase.FAILED
            log.critical("startup failed; the process stops", exc_info=True)
            self.on_failure()

    def _migrate(self) -> None:
        if self.settings.fault_points:  # fault tests: a migration that takes for ever
            FaultPoints(self.settings.fault_points, self.settings.data_dir).reach(WHILE_MIGRATING)
        migrate_database(self.settings)
