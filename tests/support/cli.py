"""`lienthong` commands run in-process against a test's node."""

from __future__ import annotations

from click.testing import CliRunner, Result

from gateway.cli import main
from tests.support.nodes import Backing


def run(backing: Backing, *args: str, **env: str) -> Result:
    """Run `lienthong ARGS` with the backing's settings as `LIENTHONG_*` variables (plus
    `env`); exceptions propagate."""
    environment = {**backing.environment(), **env}
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)
