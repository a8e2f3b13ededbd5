"""The SQL store performs every transition the state machine allows and refuses every one it
forbids (SPEC §3.2), on each backend.

Each case takes a fresh delivery, forces it into a state (as if it had got there), calls one
store operation that moves deliveries to some target state, and reads the delivery's timeline
back. Which operation moves a delivery from where is written out here (`OPERATIONS`), not
read from the table: the first test holds the store to it state by state, the second holds
it to the table. No node runs, so no relay or consumer moves anything behind the test's back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select, update

from adapters.db.models import Delivery, OutboxEntry
from adapters.db.store import SqlStore
from gateway.delivery_states import CAUGHT_UP, TRANSITIONS, DeliveryState, caught_up
from gateway.edxml.parser import ParsedPackage, parse_package
from gateway.errors import GatewayError
from gateway.operators import Operator, Role, Selection
from gateway.records import AgencyRecord, NewMessage, RecipientPlan, TimelineEntry
from gateway.runtime import build_store
from gateway.types import AgencyCode, MessageKind, RouteKind, RoutingKey, SystemId
from tests.support.nodes import Backing
from tests.support.samples import document

S = DeliveryState
SENDER, RECIPIENT = "000.00.01.H53", "000.00.02.H53"
SYSTEM = "sys.recipient"
OPERATOR = Operator("test-transitions", Role.ADMIN)


@dataclass(frozen=True, slots=True)
class Case:
    message_id: str
    delivery_id: str


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    target: DeliveryState
    run: Callable[[SqlStore, Case], Awaitable[object]]
    performs: frozenset[DeliveryState]
    """The states it moves a delivery to `target` from; from any other it changes nothing."""
    consumer: bool = False
    """A consumer: from `accepted` it records the relay's step first (`caught_up`)."""


async def _mark_published(store: SqlStore, case: Case) -> None:
    async with store.transaction(read_only=True) as session:
        outbox_ids = (
            await session.scalars(
                select(OutboxEntry.id)
                .join(Delivery, Delivery.id == OutboxEntry.delivery_id)
                .where(Delivery.public_id == case.delivery_id)
            )
        ).all()
    await store.mark_published(outbox_ids, actor="relay")


def _selection(case: Case) -> Selection:
    return Selection(delivery_ids=(case.delivery_id,))


SUCCESSOR = "000.00.09.H53"


async def _merge_recipient(store: SqlStore, case: Case) -> None:
    """`agencies merge`: the recipient merged into SUCCESSOR (served by the same system)."""
    await store.upsert_agencies(
        [AgencyRecord(AgencyCode(RECIPIENT), "Cu"), AgencyRecord(AgencyCode(SUCCESSOR), "Moi")]
    )
    plan = RecipientPlan(
        AgencyCode(RECIPIENT),
        AgencyCode(SUCCESSOR),
        RouteKind.INBOX,
        SystemId(SYSTEM),
        RoutingKey("inbox.H53.09.00.000.s0"),
    )
    await store.merge_agency(RECIPIENT, SUCCESSOR, plan, "operator:test")


OPERATIONS = [
    Operation("relay: broker confirmed", S.QUEUED, _mark_published, frozenset({S.ACCEPTED})),
    Operation(
        "operator: replay",
        S.QUEUED,
        lambda store, case: store.replay(_selection(case), "test", OPERATOR, False),
        frozenset({S.ACCEPTED, S.QUEUED, S.RETRYING, S.DEAD}),
    ),
    Operation(
        "consumer: into the inbox",
        S.AVAILABLE,
        lambda store, case: store.make_available(case.delivery_id, "consumer"),
        frozenset({S.QUEUED, S.RETRYING}),
        consumer=True,
    ),
    Operation(
        "recipient: download",
        S.DOWNLOADED,
        lambda store, case: store.download(SYSTEM, case.delivery_id, "recipient"),
        frozenset({S.AVAILABLE, S.FAIL}),
    ),
    # Only an item still `available` must be downloaded first; a queued or retrying one may
    # be acknowledged `done` (a system that fetched it by id, or a push endpoint's system).
    Operation(
        "recipient: acknowledge done",
        S.DONE,
        lambda store, case: store.acknowledge(
            SYSTEM, case.delivery_id, "done", None, "recipient", 60.0
        ),
        frozenset({S.QUEUED, S.DOWNLOADED, S.FAIL, S.RETRYING}),
    ),
    Operation(
        "recipient: acknowledge fail",
        S.FAIL,
        lambda store, case: store.acknowledge(
            SYSTEM, case.delivery_id, "fail", "full", "recipient", 60.0
        ),
        frozenset({S.DOWNLOADED}),
    ),
    Operation(
        "push: endpoint took it",
        S.DONE,
        lambda store, case: store.push_succeeded(case.delivery_id, "HTTP 200"),
        frozenset({S.QUEUED, S.RETRYING}),
        consumer=True,
    ),
    Operation(
        "push: attempt failed",
        S.RETRYING,
        lambda store, case: store.push_failed(case.delivery_id, "HTTP 503", 10.0),
        frozenset({S.QUEUED, S.RETRYING}),
        consumer=True,
    ),
    Operation(
        "push: budget spent",
        S.DEAD,
        lambda store, case: store.push_failed(case.delivery_id, "HTTP 503", None),
        frozenset({S.QUEUED, S.RETRYING}),
        consumer=True,
    ),
    # Not downloaded yet: it follows the merge through the pipeline again (a `fail` one was
    # downloaded before, so it never qualifies; forced here, it is left as it is).
    Operation(
        "operator: merge its agency",
        S.QUEUED,
        _merge_recipient,
        frozenset({S.ACCEPTED, S.QUEUED, S.AVAILABLE, S.RETRYING}),
    ),
    Operation(
        "operator: cancel",
        S.CANCELLED,
        lambda store, case: store.cancel(_selection(case), "test", OPERATOR, False),
        frozenset({S.ACCEPTED, S.QUEUED, S.AVAILABLE, S.DOWNLOADED, S.FAIL, S.RETRYING, S.DEAD}),
    ),
]

NO_OPERATION_YET = frozenset(
    {
        # Forwarding to a peer node (SPEC §3.5) is not built yet.
        (S.QUEUED, S.FORWARDED),
        (S.RETRYING, S.FORWARDED),
        # Nothing declares a delivery dead before it was queued, or after the recipient said fail.
        (S.ACCEPTED, S.DEAD),
        (S.FAIL, S.DEAD),
    }
)
"""Allowed by the table, performed by no store operation (yet)."""


def expected_steps(
    operation: Operation, state: DeliveryState
) -> list[tuple[DeliveryState, DeliveryState]]:
    if state in operation.performs:
        return [(state, operation.target)]
    if (
        operation.consumer
        and caught_up(state) is not state
        and caught_up(state) in operation.performs
    ):
        return [(state, caught_up(state)), (caught_up(state), operation.target)]
    return []


@pytest.fixture
async def store(backing: Backing) -> AsyncIterator[SqlStore]:
    store = build_store(backing.settings())
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(scope="module")
def package() -> ParsedPackage:
    return parse_package(document(SENDER, [RECIPIENT]))


async def new_delivery(store: SqlStore, package: ParsedPackage) -> Case:
    """A delivery as acceptance leaves it: `accepted`, with its outbox row."""
    plan = RecipientPlan(
        AgencyCode(RECIPIENT),
        AgencyCode(RECIPIENT),
        RouteKind.INBOX,
        SystemId(SYSTEM),
        RoutingKey("inbox.H53.02.00.000.s0"),
    )
    accepted = await store.accept(
        NewMessage(
            kind=MessageKind.EDOC,
            sender_system_id=SystemId("sys.sender"),
            package=package,
            payload_sha256="0" * 64,
            payload_size=1,
            recipients=(plan,),
            dedup_key=None,
            idempotency_key=None,
        ),
        actor="test",
    )
    [delivery] = accepted.deliveries
    return Case(accepted.message_id, delivery.delivery_id)


async def force_state(store: SqlStore, case: Case, state: DeliveryState) -> None:
    """Test setup: put the delivery in `state` as if it had got there (no timeline row)."""
    async with store.transaction() as session:
        await session.execute(
            update(Delivery).where(Delivery.public_id == case.delivery_id).values(state=state.value)
        )


async def timeline(store: SqlStore, case: Case) -> tuple[str, list[TimelineEntry]]:
    [delivery] = (await store.message_detail(case.message_id)).deliveries
    return delivery.state, list(delivery.timeline)


@pytest.mark.parametrize("operation", OPERATIONS, ids=[o.name for o in OPERATIONS])
async def test_the_store_moves_exactly_what_each_operation_may_move(
    store: SqlStore, package: ParsedPackage, operation: Operation
) -> None:
    for state in DeliveryState:
        case = await new_delivery(store, package)
        await force_state(store, case, state)
        _, before = await timeline(store, case)
        try:
            await operation.run(store, case)
        except GatewayError:
            pass  # a refusal may be an error or an answer; what counts is what changed
        now_in, rows = await timeline(store, case)
        steps = [(row.from_state, row.to_state) for row in rows[len(before) :]]
        expected = expected_steps(operation, state)
        assert steps == [(a.value, b.value) for a, b in expected], (operation.name, state)
        assert now_in == (operation.target if expected else state).value, (operation.name, state)
        if len(expected) == 2:
            assert rows[len(before)].reason == CAUGHT_UP


def test_the_operations_cover_the_table() -> None:
    """Every transition the table allows is performed by some store operation (but those
    no operation performs yet), and none of them performs one it forbids."""
    allowed = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    performed = {
        step
        for operation in OPERATIONS
        for state in DeliveryState
        for step in expected_steps(operation, state)
    }
    assert performed <= allowed, performed - allowed
    assert allowed - performed == NO_OPERATION_YET
