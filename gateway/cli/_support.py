"""What several command groups share: errors as click errors, the CLI as an operator, the
signature-policy choice, and durations as people type them."""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable
from typing import TypeVar

import click

from gateway.errors import GatewayError, InvalidRequest
from gateway.operators.roles import Operator, Role

T = TypeVar("T")

POLICIES = click.Choice(["require", "verify-if-present", "off", "default"])
"""A signature policy for a system or an agency; `default` clears it (the node's applies)."""


def checked(build: Callable[[], T]) -> T:
    """`build()`, its refusal shown as the command's error."""
    try:
        return build()
    except GatewayError as error:
        raise click.ClickException(error.detail) from None


def cli_operator() -> Operator:
    """The CLI acts as operator `cli:<unix user>` with role admin (it has database access
    anyway) and is recorded like any other operator."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Operator(f"cli:{user}", Role.ADMIN)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> float:
    """`90`, `45s`, `30m`, `2h`, `1d`, `1w`, or combinations such as `1h30m`, in seconds."""
    text = value.strip().lower()
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position or not match.group(0):
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise InvalidRequest(f"{value!r} is not a duration (e.g. 90, 45s, 30m, 2h, 1d)")
    return total
