"""The node's log lines: one line per event, JSON by default, each carrying the correlation id
of the package it is about.

The correlation id is the package's message id (the `DocId` its sender got back). The code
that works on one package sets it for the duration of that work (`correlated`), in the
submitting request once the package is accepted, and in the relay, the inbox consumer, the
pusher and the forwarder, which read it from the broker message (`{"delivery": …,
"message": …}`); a `logging.Filter` on the handler copies it into every record logged
meanwhile, uvicorn's access line of that request included. So `jq 'select(.correlation_id
== "…")'` over the logs of every process of a node shows one package's path.

`LIENTHONG_LOG_FORMAT=json` (the default) writes objects with `time`, `level`, `logger`,
`message`, `pid`, `correlation_id` (when known), the record's extra fields and `exception`;
`text` writes the same as one readable line. uvicorn's own loggers, access log included,
go through the same handler (`logging_config` is given to uvicorn, which applies it in
every worker process too).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_correlation: ContextVar[str | None] = ContextVar("lienthong_correlation", default=None)

LOG_FORMATS = ("json", "text")

_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName", "correlation_id", "color_message", "correlation_tag"}
)
"""Attributes every record has; anything else was passed as `extra=` and is written out."""


def correlation_id() -> str | None:
    return _correlation.get()


def set_correlation(message_id: str | None) -> None:
    """For the rest of the current task (a request's, a broker message's)."""
    _correlation.set(message_id)


@contextlib.contextmanager
def correlated(message_id: str | None) -> Iterator[None]:
    """Log lines written inside are about this package."""
    token = _correlation.set(message_id)
    try:
        yield
    finally:
        _correlation.reset(token)


class CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = _correlation.get()
        return True


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line (`'%s - "%s %s HTTP/%s" %d'`) as fields."""
    args = record.args
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        client, method, path, version, status = args
        return {
            "client": client,
            "method": method,
            "path": path,
            "http_version": version,
            "status": status,
        }
    return {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        correlation = getattr(record, "correlation_id", None)
        if correlation:
            line["correlation_id"] = correlation
        line.update(_access_fields(record))
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [correlation id] message key=value …`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(correlation_tag)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        correlation = getattr(record, "correlation_id", None)
        record.correlation_tag = f" [{correlation}]" if correlation else ""
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        extra = [f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD]
        return " ".join([super().formatMessage(record), *extra])


def body_ids(payload: str | bytes) -> tuple[str | None, str | None]:
    """(delivery, message) public ids of an outbox payload / broker message body
    (`{"delivery": …, "route": …, "message": …}`; rows written before the message id was
    added have none)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    delivery, message = body.get("delivery"), body.get("message")
    return (
        str(delivery) if delivery is not None else None,
        str(message) if message is not None else None,
    )


def logging_config(log_format: str = "json", level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the whole process, uvicorn's loggers included."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, not {log_format!r}")
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"correlation": {"()": "gateway.logs.CorrelationFilter"}},
        "formatters": {
            "json": {"()": "gateway.logs.JsonFormatter"},
            "text": {"()": "gateway.logs.TextFormatter"},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": log_format,
                "filters": ["correlation"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            name: {"level": level, "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
