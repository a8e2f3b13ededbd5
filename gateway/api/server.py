"""Running the application under uvicorn with the node's connection limits.

`lienthong serve` comes here. uvicorn's own settings cover the idle time between requests
(`timeout_keep_alive`) but not the size or arrival time of a request head, nor the draining
of a body after its answer: `gateway.api.protocol` adds those to its httptools protocol (the
h11 protocol, with its `h11_max_incomplete_event_size`, is not used). The API and, when
configured, the metrics listener are two sockets of one server.
"""

from __future__ import annotations

import logging
import socket

import uvicorn

from gateway.api.app import create_app
from gateway.api.protocol import ConnectionLimits, protocol_class
from gateway.settings import Settings, metrics_address

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


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    sockets = [listen(host, port)]
    where = f"API on http://{host}:{port}"
    if settings.metrics_bind:
        metrics_host, metrics_port = metrics_address(settings.metrics_bind)
        if metrics_port == port:
            raise SystemExit("LIENTHONG_METRICS_BIND must use another port than the API")
        sockets.append(listen(metrics_host, metrics_port))
        where += f", /metrics on http://{metrics_host}:{metrics_port} only"
    config = uvicorn.Config(
        create_app(settings),
        http=protocol_class(connection_limits(settings)),
        ws="none",
        log_level="info",
    )
    log.info("serving %s (data directory %s)", where, settings.data_dir)
    uvicorn.Server(config).run(sockets=sockets)
