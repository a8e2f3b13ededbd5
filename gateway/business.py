"""What revoke, update and replace packages do to the document they act on (SPEC §2.1).

A pure decision, applied by the store inside the accepting transaction with the original's
deliveries locked, so a recipient that downloads at the same moment is either counted as
having the document or has its delivery cancelled, never both or neither.

- revoke (thu hồi, 1): deliveries of the original not yet downloaded are cancelled; the
  revocation goes to the recipients who already have the document.
- update (cập nhật, 2): recipients removed (ReceiverType 0) lose pending items and get the
  update as notice; recipients added (1) get it, hence the document; the listed ones too.
- replace (thay thế, 3): delivered like a new document and linked to the replaced ones.
An act whose original is unknown here (sent through another node) is delivered to the
recipients it lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.delivery_states import HAS_THE_DOCUMENT, NOT_YET_DOWNLOADED
from gateway.edxml.model import BusinessType
from gateway.records import BusinessAct, RecipientPlan


@dataclass(frozen=True, slots=True)
class TargetDelivery:
    row_id: int
    recipient_code: str
    state: str


@dataclass(frozen=True, slots=True)
class Decision:
    plans: tuple[RecipientPlan, ...]
    cancel: tuple[int, ...]
    reason: str


def decide(
    act: BusinessAct,
    listed: Sequence[RecipientPlan],
    holders: Mapping[str, RecipientPlan],
    original: Sequence[TargetDelivery] | None,
    message_id: str,
) -> Decision:
    """`listed`: plans for the recipients the package names; `holders`: plans for the
    original's recipients (routable ones); `original`: its deliveries, None if unknown."""
    if original is None or act.kind is BusinessType.REPLACE:
        return Decision(tuple(listed), (), "")
    if act.kind is BusinessType.REVOKE:
        have = [d.recipient_code for d in original if d.state in HAS_THE_DOCUMENT]
        return Decision(
            plans=tuple(holders[code] for code in have if code in holders),
            cancel=tuple(d.row_id for d in original if d.state in NOT_YET_DOWNLOADED),
            reason=f"revoked (thu hồi) by {message_id}",
        )
    return Decision(
        plans=tuple(listed),
        cancel=tuple(
            d.row_id
            for d in original
            if d.recipient_code in act.removed and d.state in NOT_YET_DOWNLOADED
        ),
        reason=f"recipient removed by update (cập nhật) {message_id}",
    )
