"""Who operators are and what their role lets them do; their tokens.

A token is shown once, when the operator is added; only its SHA-256 is stored and tokens are
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gateway.errors import InvalidRequest, RoleNotAllowed

OPERATOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""No ':' (it separates name and token), so names never collide with `cli:<user>` actors."""


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    AUDITOR = "auditor"


class Permission(StrEnum):
    READ = "read"
    REPLAY = "replay"
    CANCEL = "cancel"
    DIRECTORY = "directory"
    """Merge, rename and retire agencies (SPEC §4.3: operators do the directory)."""
    MANAGE = "manage"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.AUDITOR: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset(
        {Permission.READ, Permission.REPLAY, Permission.CANCEL, Permission.DIRECTORY}
    ),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Operator:
    """Who acts: an operator authenticated on the API, or the CLI's `cli:<unix user>`."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How timelines and the evidence log name this operator."""
        return f"operator:{self.name}"

    def require(self, permission: Permission) -> None:
        if permission not in ROLE_PERMISSIONS[self.role]:
            raise RoleNotAllowed(f"role '{self.role.value}' may not {permission.value}")


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    name: str
    role: Role
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OperatorCredentials:
    record: OperatorRecord
    token_sha256: str = field(repr=False)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(token_hash(token).encode(), stored_sha256.encode())


def check_operator_name(name: str) -> str:
    if not OPERATOR_NAME.fullmatch(name):
        raise InvalidRequest(
            f"operator name {name!r}: 1-64 letters, digits, '.', '_', '@', '-' (no ':')"
        )
    return name


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest(f"role {value!r}: use admin, operator or auditor") from None
