"""Operators (SPEC §4.3): who may look at and act on stuck messages, and what they may do.

Operator credentials are separate from system credentials. Roles: `auditor` reads, `operator`
also replays and cancels, `admin` may do everything (managing operators is done with the CLI).
Every replay and cancel, dry runs included, is recorded in `operator_actions`; executed ones
also go to the evidence log.

One module per concept: `roles` (identities, roles, permissions, tokens), `selection` (what
operators search for and select), `actions` (what replay may act on, what an action did),
`views` (what the store answers). What the store must do for them is the `OperatorStore`
port in `gateway.ports`.
"""

from gateway.delivery_states import REPLAYABLE
from gateway.operators.actions import (
    ActedOn,
    ActionOutcome,
    OperatorAction,
    Skipped,
    replay_refusal,
)
from gateway.operators.roles import (
    ROLE_PERMISSIONS,
    Operator,
    OperatorCredentials,
    OperatorRecord,
    Permission,
    Role,
    check_operator_name,
    new_token,
    parse_role,
    token_hash,
    token_matches,
)
from gateway.operators.selection import (
    MAX_PAGE,
    MAX_SELECTION,
    MessageFilter,
    Selection,
    check_reason,
    parse_time,
    states_of,
)
from gateway.operators.views import DeliveryRow, MessageDetail

__all__ = [
    "MAX_PAGE",
    "MAX_SELECTION",
    "REPLAYABLE",
    "ROLE_PERMISSIONS",
    "ActedOn",
    "ActionOutcome",
    "DeliveryRow",
    "MessageDetail",
    "MessageFilter",
    "Operator",
    "OperatorAction",
    "OperatorCredentials",
    "OperatorRecord",
    "Permission",
    "Role",
    "Selection",
    "Skipped",
    "check_operator_name",
    "check_reason",
    "new_token",
    "parse_role",
    "parse_time",
    "replay_refusal",
    "states_of",
    "token_hash",
    "token_matches",
]
