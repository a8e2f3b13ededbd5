"""`lienthong edxml`: check, read and write edXML packages (SPEC §2.1–2.2) from the shell.

`validate` and `show` run the node's own parser, so what they accept is what the node accepts;
`build` and `status` write packages with `gateway.edxml.builder` and parse the result before
calling it good.

One module per part: `check` (validate, show, with `summary` and the signature `policy`
lines), `build`, `status`, `signing` (sign, verify).
"""

from __future__ import annotations

import click

from gateway.cli.edxml import build, check, signing, status


@click.group()
def edxml() -> None:
    """Check, show and write edXML packages (QCVN 102:2016)."""


for command in (
    check.validate,
    check.show,
    build.build,
    status.status,
    signing.sign,
    signing.verify,
):
    edxml.add_command(command)
