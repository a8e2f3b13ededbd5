"""`lienthong edxml build`: a package from a YAML or JSON description of the model, written
with `gateway.edxml.builder` and parsed before it is called good."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel, ValidationError

from gateway.cli.edxml._output import FileArgument, counted, echo_problems, fail, stdout_bytes
from gateway.edxml.builder import write_package
from gateway.edxml.model import VIETNAM, DocumentPackage, StatusPackage, field_type
from gateway.edxml.parser import parse_package
from gateway.edxml.reader import convert
from gateway.errors import PackageRejected, Problem


@click.command()
@click.argument("description", type=FileArgument)
@click.option(
    "--attach",
    "attach",
    multiple=True,
    metavar="CONTENT_ID=PATH",
    help="The bytes of the attachment CONTENT_ID (repeatable).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the package here instead of standard output.",
)
def build(description: Path, attach: tuple[str, ...], output: Path | None) -> None:
    """Write a package from DESCRIPTION, a YAML or JSON file holding the model.

    Keys are element names (From, To, DocumentId, …) or the model's snake_case names; dates
    are yyyy/MM/dd, timestamps yyyy/MM/dd HH:mm:ss (Vietnam time). A header with a
    StatusCode makes a status package. Each attachment's bytes come from --attach or from a
    `file:` key in its entry (relative to DESCRIPTION)."""
    try:
        data = yaml.safe_load(description.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        fail(f"{description}: not YAML or JSON: {error}")
    if not isinstance(data, dict):
        fail(f"{description}: expected a mapping with header, references, attachments")
    files = _attachment_files(data, description.parent)
    for item in attach:
        content_id, separator, location = item.partition("=")
        if not separator or not content_id or not location:
            fail(f"--attach {item!r}: expected CONTENT_ID=PATH")
        files[content_id] = Path(location)
    header = data.get("header")
    is_status = isinstance(header, dict) and ("StatusCode" in header or "status_code" in header)
    kind: type[DocumentPackage | StatusPackage] = StatusPackage if is_status else DocumentPackage
    try:
        package = kind.model_validate(_coerce(data, kind))
    except ValidationError as error:
        click.echo(f"{description}: the description is not a valid {kind.__name__}:", err=True)
        for detail in error.errors():
            location = ".".join(str(part) for part in detail["loc"]) or "(top)"
            click.echo(f"  {location}: {detail['msg']}", err=True)
        raise SystemExit(1) from None
    for content_id, path in files.items():
        if not path.is_file():
            fail(f"attachment {content_id}: {path} is not a file")
    _write_checked(package, dict(files), output)


def _attachment_files(data: dict[str, Any], base: Path) -> dict[str, Path]:
    """Pop each attachment entry's `file:` key (not part of the model)."""
    files: dict[str, Path] = {}
    entries = data.get("attachments")
    if not isinstance(entries, list):
        return files
    for entry in entries:
        if isinstance(entry, dict) and "file" in entry:
            name = entry.pop("file")
            content_id = entry.get("ContentId", entry.get("content_id"))
            if content_id is None:
                fail("an attachment with a file: key has no ContentId")
            files[str(content_id)] = base / str(name)
    return files


def _coerce(data: Any, model: type[BaseModel]) -> Any:
    """Bring YAML scalars to what the model expects: edXML dates and timestamps (which
    pydantic does not read), numbers where text is expected, `01` read by YAML as 1."""
    if not isinstance(data, dict):
        return data
    fields = {
        key: (name, info)
        for name, info in model.model_fields.items()
        for key in (name, info.alias)
        if key
    }
    result: dict[Any, Any] = {}
    for key, value in data.items():
        found = fields.get(key)
        if found is None:
            result[key] = value
            continue
        kind, is_list = field_type(found[1].annotation)
        if is_list and isinstance(value, list):
            result[key] = [_coerce_value(item, kind) for item in value]
        else:
            result[key] = _coerce_value(value, kind)
    return result


def _coerce_value(value: Any, kind: Any) -> Any:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return _coerce(value, kind)
    if isinstance(value, str) and kind in (date, datetime):
        try:
            return convert(value.strip(), kind)
        except ValueError:
            return value  # maybe ISO: pydantic reads it or says what is wrong
    if isinstance(value, datetime) and kind is datetime and value.tzinfo is None:
        return value.replace(tzinfo=VIETNAM)
    if isinstance(value, int) and not isinstance(value, bool):
        if kind is str:
            return str(value)
        if isinstance(kind, type) and issubclass(kind, Enum) and not issubclass(kind, int):
            return f"{value:02d}"
    if isinstance(value, float) and kind is str:
        return str(value)
    return value


def _write_checked(
    package: DocumentPackage | StatusPackage,
    attachments: Mapping[str, bytes | Path],
    output: Path | None,
) -> None:
    """Write the package to `output` (or stdout), then parse what was written; exit 1 with
    the problems when the node would refuse it."""
    directory = output.resolve().parent if output is not None else None
    handle, name = tempfile.mkstemp(prefix=".edxml-", suffix=".tmp", dir=directory)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                write_package(package, attachments, out)
            except (ValueError, OSError) as error:
                fail(f"cannot write the package: {error}")
        if output is not None:
            os.replace(temporary, output)
            written = output
        else:
            with open(temporary, "rb") as source:
                shutil.copyfileobj(source, stdout_bytes())
            written = temporary
        try:
            parsed = parse_package(written)
        except PackageRejected as error:
            echo_problems(
                error.problems or [Problem("PACKAGE_INVALID", "/", error.detail)], err=True
            )
            click.echo(
                f"INVALID: the package written would be refused "
                f"({counted(error.problems, 'problem')})",
                err=True,
            )
            raise SystemExit(1) from None
        echo_problems(parsed.warnings, err=True)
        if output is not None:
            click.echo(f"wrote {output} ({output.stat().st_size} bytes)", err=True)
    finally:
        temporary.unlink(missing_ok=True)
