"""Running the application under uvicorn with the node's connection limits.

`lienthong serve` comes here. uvicorn's own settings cover the idle time between requests
(`timeout_keep_alive`) but not the size or arrival time of a request head, nor the draining
of a body after its answer: `gateway.api.protocol` adds those to its httptools protocol (the
h11 protocol, with its `h11_max_incomplete_event_size`, is not used). The API and, when
configured, the metrics listener are two sockets of one server.

With `workers` > 1 the sockets are bound here once and shared by that many worker processes
(uvicorn's supervisor restarts one that dies): each worker is a whole gateway process with its
own relay and consumers, which is how several processes already run against one PostgreSQL and
RabbitMQ. The embedded backend lives in one process, so it is refused there.

Logging: one configuration (`gateway.logs.logging_config`: JSON lines or text, with the
correlation id) for this process, and given to uvicorn, which applies it in each worker and
to its own error and access loggers. Metrics: the workers count in prometheus-client's
multiprocess mode (`gateway.telemetry`), in a private directory made here for the run
(or `PROMETHEUS_MULTIPROC_DIR` when the operator set one: emptied at start) and removed
after.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile

import uvicorn
from uvicorn.supervisors import Multiprocess

from gateway.api.app import create_app
from gateway.api.protocol import ConnectionLimits, protocol_class
from gateway.api.startup import Phase, Startup
from gateway.errors import InvalidRequest
from gateway.logs import logging_config
from gateway.settings import Settings, metrics_address
from gateway.telemetry import MULTIPROC_ENV, multiprocess_dir, prepare_multiprocess_dir

log = logging.getLogger(__name__)


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        max_head_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        head_timeout=settings.header_timeout_seconds,
        drain_timeout=settings.body_timeout_seconds,
    )


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


def check_workers(settings: Settings, workers: int) -> None:
    """Several workers need backends shared between processes: PostgreSQL and RabbitMQ."""
    if workers < 1:
        raise InvalidRequest(f"--workers must be at least 1, not {workers}")
    if workers == 1:
        return
    if settings.uses_embedded_broker:
        raise InvalidRequest(
            "--workers > 1 needs RabbitMQ (LIENTHONG_BROKER_URL): the embedded broker lives "
            "in one process"
        )
    if not settings.resolved_database_url.startswith("postgresql"):
        raise InvalidRequest(
            "--workers > 1 needs PostgreSQL (LIENTHONG_DATABASE_URL): SQLite has one writer"
        )


def serve(
    settings: Settings, host: str, port: int, workers: int = 1, migrate: bool = False
) -> None:
    """Serve until SIGINT/SIGTERM, in this process or in `workers` worker processes;
    `migrate` (one process only): migrate in the background once listening
    (`gateway.api.startup`)."""
    check_workers(settings, workers)
    if migrate and workers > 1:
        raise InvalidRequest("migrate before starting several workers")
    sockets = [listen(host, port)]
    where = f"API on http://{host}:{port}"
    if settings.metrics_bind:
        metrics_host, metrics_port = metrics_address(settings.metrics_bind)
        if metrics_port == port:
            raise SystemExit("LIENTHONG_METRICS_BIND must use another port than the API")
        sockets.append(listen(metrics_host, metrics_port))
        where += f", /metrics on http://{metrics_host}:{metrics_port} only"
    log.info("serving %s (data directory %s)", where, settings.data_dir)
    logs = logging_config(settings.log_format, settings.log_level)
    if workers == 1:
        if multiprocess_dir() is not None:
            prepare_multiprocess_dir(str(multiprocess_dir()))
        app = create_app(settings, migrate=migrate)
        config = uvicorn.Config(
            app,
            http=protocol_class(connection_limits(settings)),
            ws="none",
            log_config=logs,
            log_level=settings.log_level.value,
        )
        server = uvicorn.Server(config)
        startup: Startup = app.state.startup
        startup.on_failure = lambda: setattr(server, "should_exit", True)
        server.run(sockets=sockets)
        if startup.phase is Phase.FAILED:
            raise SystemExit(1)
        return
    log.info("%d worker processes", workers)
    config = uvicorn.Config(
        "gateway.api.worker:app",
        factory=True,
        http="gateway.api.worker:protocol",
        ws="none",
        log_config=logs,
        log_level=settings.log_level.value,
        workers=workers,
    )
    directory = multiprocess_dir()
    made = directory is None
    if directory is None:
        # The workers inherit it (spawned after this) and count into it.
        directory = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="lienthong-metrics-")
    prepare_multiprocess_dir(directory)
    try:
        Multiprocess(config, sockets=sockets).run()
    finally:
        if made:
            shutil.rmtree(directory, ignore_errors=True)
