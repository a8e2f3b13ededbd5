"""Reorganisation of the directory by operators (SPEC §2.3; the 2025 mergers removed the
district level and merged provinces): `lienthong agencies merge|rename|retire`.

- **merge OLD --into NEW**: OLD becomes `merged` with successor NEW. Packages naming OLD go to
  NEW's live successor from then on (`gateway.routing`, the sender's receipt says so:
  `RECIPIENT_MERGED`). Deliveries already pending to OLD that its recipient has not
  downloaded (accepted, queued, retrying, available; see `FOLLOW_A_MERGE`) follow: their
  recipient becomes the successor and their route the successor's — decided here as at
  acceptance, so when NEW is served by another system (or behind a peer, or by push) a
  delivery waiting in OLD's inbox leaves it and goes through the pipeline again (`queued`, a
  new outbox row, a timeline row naming the merge) into the successor's inbox; OLD's system
  no longer sees it. A package that also names the successor is cancelled for OLD (the
  successor has its own delivery). Downloaded ones stay: that recipient has the document.
  Refused while something is pending and no system or peer serves the successor.
- **rename CODE --name N**: the same code, a new name.
- **retire CODE**: closed (`retired`); packages to it are refused with RECIPIENT_CLOSED (23);
  what was accepted before is still delivered.

Each change takes a directory version (peers sync it incrementally: `deleted` for a retired
code, `status`/`successorCode` for a merge), bumps the configuration (routing sees it at
once in every process), makes the row this node's own (a peer's sync no longer overwrites
it), and is in the evidence log.
"""

from __future__ import annotations

from gateway.codes import is_valid_code
from gateway.directory_sync import MAX_NAME, MergeOutcome
from gateway.errors import InvalidRequest
from gateway.ports import NodeStore
from gateway.records import DirectoryChange
from gateway.routing import route_one
from gateway.types import AgencyCode


def _code(value: str) -> str:
    if not is_valid_code(value):
        raise InvalidRequest(f"{value!r} is not a valid identifier code")
    return value


async def merge_agency(
    store: NodeStore, old: str, new: str, shards: int, actor: str
) -> MergeOutcome:
    """Merge OLD into NEW (see the module's note)."""
    old, new = _code(old), _code(new)
    if old == new:
        raise InvalidRequest("an agency cannot be merged into itself")
    successor = (await store.current_codes([new]))[new]
    if successor == old:
        raise InvalidRequest(f"{new} is itself merged into {old}: that would be a cycle")
    closed = await store.closed_agencies([successor])
    if successor in closed:
        leads = f"leads to {successor}, which is" if successor != new else "is"
        raise InvalidRequest(f"{new} {leads} {closed[successor]}: only live agencies merge")
    plan = route_one(
        old,
        AgencyCode(successor),
        await store.list_systems(),
        await store.list_peers(),
        shards,
    )
    return await store.merge_agency(old, new, plan, actor)


async def rename_agency(store: NodeStore, code: str, name: str, actor: str) -> DirectoryChange:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidRequest(f"a name has 1 to {MAX_NAME} characters")
    return await store.rename_agency(_code(code), name, actor)


async def retire_agency(store: NodeStore, code: str, actor: str) -> DirectoryChange:
    return await store.retire_agency(_code(code), actor)
