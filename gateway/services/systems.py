"""The lifecycle of a connected system after `add`: disable and enable it, rotate its secret
(with a grace period for the old one), remove it. The CLI (`lienthong systems …`) and the
operator API (`/api/v1/operator/systems`) both call these, and every call is recorded in the
operator audit trail (by the store, in the changing transaction).

What each change means, on every gateway process from its next request (the configuration
version is bumped with the change):

- disabled: the system's calls are refused with their own error, `SYSTEM_DISABLED` (403;
  `/vxp` ErrorCode 29) — once its credentials check out, so a stranger still reads 15; its
  agencies are locked as recipients (`RECIPIENT_LOCKED`, 422; 23), not handed to another
  system or a peer; deliveries already in its inbox wait there, pushes to it are not made
  (retried within the push budget, then dead: replay them once it is enabled).
- rotated: a new secret, shown once; the old one keeps working for `grace_seconds` (0 by
  default: a rotation is often made because a secret leaked). Pushes are signed with the new
  secret at once.
- removed: the row goes, its history stays (messages and deliveries keep its id); refused
  while deliveries to it are unfinished, unless forced, which cancels them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.errors import InvalidRequest
from gateway.operators.roles import Operator
from gateway.ports import Store
from gateway.records import RemovedSystem
from gateway.services.directory import new_secret

MAX_GRACE_SECONDS = 30 * 86400
"""The longest a replaced secret may keep working (30 days)."""
MAX_REASON = 2000


@dataclass(frozen=True, slots=True)
class RotatedSecret:
    system_id: str
    secret: str
    """The new secret: shown once, stored sealed."""
    previous_valid_until: datetime | None
    """Until when the replaced secret still authenticates (None: it stopped at once)."""


def _reason(reason: str | None) -> str | None:
    text = (reason or "").strip()
    if len(text) > MAX_REASON:
        raise InvalidRequest(f"a reason has at most {MAX_REASON} characters")
    return text or None


async def disable_system(
    store: Store, system_id: str, by: Operator, reason: str | None = None
) -> bool:
    """True when it was enabled until now."""
    return await store.set_system_enabled(system_id, False, by=by, reason=_reason(reason))


async def enable_system(
    store: Store, system_id: str, by: Operator, reason: str | None = None
) -> bool:
    """True when it was disabled until now."""
    return await store.set_system_enabled(system_id, True, by=by, reason=_reason(reason))


async def rotate_secret(
    store: Store,
    system_id: str,
    by: Operator,
    grace_seconds: float = 0.0,
    secret: str | None = None,
    reason: str | None = None,
) -> RotatedSecret:
    """A new secret (generated unless given) for `system_id`; the one it replaces keeps
    working for `grace_seconds` (at most `MAX_GRACE_SECONDS`)."""
    if not (math.isfinite(grace_seconds) and 0 <= grace_seconds <= MAX_GRACE_SECONDS):
        raise InvalidRequest(
            f"the grace period is 0 to {MAX_GRACE_SECONDS} seconds (30 days), not {grace_seconds!r}"
        )
    secret = secret or new_secret()
    if len(secret) < 8:
        raise InvalidRequest("a secret must have at least 8 characters")
    until = datetime.now(UTC) + timedelta(seconds=grace_seconds) if grace_seconds else None
    await store.set_system_secret(
        system_id, secret, previous_until=until, by=by, reason=_reason(reason)
    )
    return RotatedSecret(system_id, secret, until)


async def remove_system(
    store: Store, system_id: str, by: Operator, force: bool = False, reason: str | None = None
) -> RemovedSystem:
    return await store.remove_system(system_id, force=force, by=by, reason=_reason(reason))
