"""What the edxml commands share: the file argument, problems as lines, exits."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, NoReturn

import click

from gateway.errors import Problem

FileArgument = click.Path(exists=True, dir_okay=False, path_type=Path)


def echo_problems(problems: Iterable[Problem], *, err: bool = False) -> None:
    for problem in problems:
        label = "WARNING" if problem.severity == "warning" else "ERROR"
        click.echo(f"{label} {problem.code} {problem.path}: {problem.message}", err=err)


def counted(items: Iterable[object], noun: str) -> str:
    number = len(list(items))
    return f"{number} {noun}{'' if number == 1 else 's'}"


def stdout_bytes() -> BinaryIO:
    """Standard output for bytes (the package), flushed of any text first."""
    sys.stdout.flush()
    return sys.stdout.buffer


def fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(1)
