"""`lienthong`: run the node, migrate it, and manage systems and the directory.

One module per command group: `node` (serve, migrate), `systems`, `agencies`, `operators`,
`messages`, `peers`, `trust`, `audit`, `report`, and `edxml` (a package of its own). Commands
that need the node get it from `_bootstrap`, which builds it with the composition root
(`gateway.runtime`); `_support` holds what several groups share. A new group is one module and
one entry in `COMMANDS`.
"""

from __future__ import annotations

import click

from gateway.cli import (
    agencies,
    audit,
    edxml,
    messages,
    node,
    operators,
    peers,
    report,
    systems,
    trust,
)
from gateway.settings import load_settings

__all__ = ["main"]

COMMANDS: tuple[click.Command, ...] = (
    node.migrate,
    node.serve,
    systems.systems,
    agencies.agencies,
    edxml.edxml,
    audit.audit,
    trust.trust,
    operators.operators,
    messages.messages,
    peers.peers,
    report.report,
)


@click.group()
@click.pass_context
def main(context: click.Context) -> None:
    """lienthong-gateway: a node of the document-exchange axis (trục liên thông)."""
    context.obj = load_settings()


for command in COMMANDS:
    main.add_command(command)
