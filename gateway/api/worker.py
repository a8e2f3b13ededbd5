"""What a worker process of `lienthong serve --workers N` imports: its settings, app and protocol.

uvicorn starts each worker with `spawn` and hands it the configuration by pickling, so the app
and the connection-limited protocol are named by import string and built here, in the worker,
from the same environment (and `.env`) the parent read. Nothing here runs in the parent.
"""

from __future__ import annotations

from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.api.protocol import GuardedHttpToolsProtocol, protocol_class
from gateway.api.server import connection_limits
from gateway.settings import load_settings

settings = load_settings()
protocol: type[GuardedHttpToolsProtocol] = protocol_class(connection_limits(settings))


def app() -> FastAPI:
    """The worker's application (uvicorn calls it: `factory=True`)."""
    return create_app(settings)
