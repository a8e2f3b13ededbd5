"""Deciding where each recipient's delivery goes (SPEC §3.1 steps 3–4)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from gateway.codes import best_match, routing_key
from gateway.errors import Problem, RecipientClosed, RecipientLocked, RecipientUnknown
from gateway.peers import PeerRecord, peer_for
from gateway.records import RecipientPlan, SystemRecord
from gateway.types import AgencyCode, RouteKind


def serving_system(code: str, systems: Sequence[SystemRecord]) -> SystemRecord | None:
    """The system whose most specific pattern matches, enabled or not (ties: the lowest id,
    so every gateway process decides the same).

    A disabled system still serves its agencies: they are locked (new packages to them are
    refused, `RecipientLocked`), never handed to a less specific system or a peer, which
    would send an agency's documents to software that is not the agency's."""
    return best_match(code, systems, lambda s: s.patterns, lambda s: s.system_id)


def plan_recipients(
    requested: Sequence[AgencyCode],
    current: dict[str, str],
    systems: Sequence[SystemRecord],
    shards: int,
    path_of: Callable[[int], str],
    closed: Mapping[str, str] | None = None,
    peers: Sequence[PeerRecord] = (),
) -> tuple[RecipientPlan, ...]:
    """A plan for every recipient, or a refusal naming each one nobody serves, the directory
    has closed or whose system is disabled: `RecipientUnknown` (18) when one is unknown, else
    `RecipientClosed` (23) when one is closed, else `RecipientLocked` (23). A local system
    wins; else a peer node (`gateway.peers.peer_for`).

    `current` maps requested codes to their live successor (merged agencies redirect);
    `closed` maps codes the directory retired or deleted to that status: a system pattern
    may still cover them, but they no longer exist; `path_of(i)` names the element of the
    i-th recipient for error reports."""
    plans: list[RecipientPlan] = []
    unknown: list[str] = []
    gone: list[str] = []
    locked: list[str] = []
    problems: list[Problem] = []
    disabled = {system.system_id for system in systems if not system.enabled}
    for index, code in enumerate(requested, start=1):
        target = AgencyCode(current.get(code, code))
        if any(plan.recipient_code == target for plan in plans):
            continue  # two recipients merged into one agency: it gets the package once
        status = (closed or {}).get(target)
        if status is not None:
            gone.append(f"{target} ({status})")
            problems.append(
                Problem(
                    "RECIPIENT_CLOSED", path_of(index), f"{target} is {status} in the directory"
                )
            )
            continue
        plan = route_one(code, target, systems, peers, shards)
        if plan is not None and plan.system_id in disabled:
            locked.append(f"{target} ({plan.system_id})")
            problems.append(
                Problem(
                    "RECIPIENT_LOCKED",
                    path_of(index),
                    f"{target} is served by system {plan.system_id}, which is disabled "
                    "on this node",
                )
            )
            continue
        if plan is None:
            unknown.append(target)
            problems.append(
                Problem(
                    "RECIPIENT_UNKNOWN",
                    path_of(index),
                    f"no system on this node serves {target} and no route covers it",
                )
            )
            continue
        plans.append(plan)
    if unknown or gone:
        reasons = []
        if unknown:
            reasons.append(f"recipient not served by this node: {', '.join(unknown)}")
        if gone:
            reasons.append(f"recipient closed in the directory: {', '.join(gone)}")
        if locked:
            reasons.append(f"recipient locked: {', '.join(locked)}")
        refusal = RecipientUnknown if unknown else RecipientClosed
        raise refusal("; ".join(reasons), problems=problems)
    if locked:
        raise RecipientLocked(
            f"recipient locked (its system is disabled): {', '.join(locked)}", problems=problems
        )
    return tuple(plans)


def route_known(
    codes: Sequence[str],
    current: dict[str, str],
    systems: Sequence[SystemRecord],
    shards: int,
    peers: Sequence[PeerRecord] = (),
) -> dict[str, RecipientPlan]:
    """Plans for those of `codes` that some system or peer serves, keyed by the live code;
    the others are left out (used for recipients of an earlier package, not ones a sender
    names). A disabled system is planned like any: a revocation of a document it already
    has waits in its inbox until it is enabled again."""
    plans: dict[str, RecipientPlan] = {}
    for code in codes:
        target = AgencyCode(current.get(code, code))
        plan = route_one(code, target, systems, peers, shards)
        if plan is not None and target not in plans:
            plans[target] = plan
    return plans


def route_one(
    requested: str,
    target: AgencyCode,
    systems: Sequence[SystemRecord],
    peers: Sequence[PeerRecord],
    shards: int,
) -> RecipientPlan | None:
    """The local system that serves `target`, else the peer that covers it, else none."""
    system = serving_system(target, systems)
    if system is not None:
        return plan_for(AgencyCode(requested), target, system, shards)
    peer = peer_for(target, peers)
    if peer is None:
        return None
    return RecipientPlan(
        requested_code=AgencyCode(requested),
        recipient_code=target,
        route=RouteKind.PEER,
        system_id=None,
        routing_key=routing_key(RouteKind.PEER, target, shards),
        peer=peer.name,
    )


def plan_for(
    requested: AgencyCode, target: AgencyCode, system: SystemRecord, shards: int
) -> RecipientPlan:
    """A system that takes pushes gets them POSTed; any other polls its inbox."""
    route = RouteKind.PUSH if system.delivery_mode == "push" else RouteKind.INBOX
    return RecipientPlan(
        requested_code=requested,
        recipient_code=target,
        route=route,
        system_id=system.system_id,
        routing_key=routing_key(route, target, shards),
    )
