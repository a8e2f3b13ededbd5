"""Operators for tests: registered straight in the store, with a bearer token to use."""

from __future__ import annotations

from gateway.operators import Operator, Role, new_token, token_hash
from tests.support.nodes import Node

SETUP = Operator("test-setup", Role.ADMIN)
"""The administrator on whose behalf tests register operators (the audit names it)."""


async def add_operator(node: Node, name: str, role: str) -> dict[str, str]:
    """Register operator `name` with `role`; its Authorization header."""
    token = new_token()
    await node.runtime.operators.add_operator(name, Role(role), token_hash(token), SETUP)
    return {"Authorization": f"Bearer {name}:{token}"}
