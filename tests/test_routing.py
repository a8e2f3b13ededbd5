"""Choosing the serving system and planning each recipient's delivery (SPEC §3.1 steps 3–4)."""

from __future__ import annotations

import pytest

from gateway.codes import ServePattern, routing_key
from gateway.errors import RecipientLocked, RecipientUnknown
from gateway.records import SystemRecord
from gateway.routing import plan_recipients, serving_system
from gateway.types import AgencyCode, RouteKind, SystemId


def system(system_id: str, *patterns: str, enabled: bool = True) -> SystemRecord:
    return SystemRecord(
        system_id=SystemId(system_id),
        patterns=tuple(ServePattern.parse(p) for p in patterns),
        enabled=enabled,
    )


def to_path(index: int) -> str:
    return f"MessageHeader/To[{index}]/OrganId"


def codes(*values: str) -> list[AgencyCode]:
    return [AgencyCode(v) for v in values]


PROVINCE = system("00.53.W00", "#.H53")
DEPARTMENT = system("00.53.W13", "*.*.13.H53")
EXACT = system("00.53.W99", "000.20.13.H53")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("000.00.00.H53", "00.53.W00"),
        ("000.00.13.H53", "00.53.W13"),
        ("000.20.13.H53", "00.53.W99"),
        ("000.00.00.H41", None),
    ],
)
def test_most_specific_pattern_wins(code: str, expected: str | None) -> None:
    for systems in ([PROVINCE, DEPARTMENT, EXACT], [EXACT, DEPARTMENT, PROVINCE]):
        chosen = serving_system(code, systems)
        assert (chosen.system_id if chosen else None) == expected


def test_tie_goes_to_lowest_system_id() -> None:
    systems = [system("b-system", "#.H53"), system("a-system", "#.H53"), system("c", "#.H53")]
    chosen = serving_system("000.00.00.H53", systems)
    assert chosen is not None and chosen.system_id == "a-system"


def test_a_disabled_system_still_serves_its_agencies_which_are_locked() -> None:
    """Disabling a system does not hand its agencies to a less specific system (or a peer):
    their packages are refused with 23 until it is enabled again or removed."""
    disabled_exact = system("00.53.A00", "000.00.13.H53", enabled=False)
    chosen = serving_system("000.00.13.H53", [disabled_exact, PROVINCE])
    assert chosen is not None and chosen.system_id == "00.53.A00"
    with pytest.raises(RecipientLocked) as caught:
        plan_recipients(
            codes("000.00.12.H53", "000.00.13.H53"), {}, [disabled_exact, PROVINCE], 4, to_path
        )
    error = caught.value
    assert error.vxp_code == "23" and error.http_status == 422
    assert [(p.code, p.path) for p in error.problems] == [
        ("RECIPIENT_LOCKED", "MessageHeader/To[2]/OrganId")
    ]
    assert "000.00.13.H53 (00.53.A00)" in error.detail
    # Unknown recipients as well: the package is refused as unknown (18), naming both.
    with pytest.raises(RecipientUnknown) as unknown:
        plan_recipients(
            codes("000.00.13.H53", "000.00.00.H41"), {}, [disabled_exact, PROVINCE], 4, to_path
        )
    assert [p.code for p in unknown.value.problems] == ["RECIPIENT_LOCKED", "RECIPIENT_UNKNOWN"]
    # Enabled again (or removed: the province's system takes its agencies), it is routed.
    (plan,) = plan_recipients(codes("000.00.13.H53"), {}, [PROVINCE], 4, to_path)
    assert plan.system_id == "00.53.W00"


def test_plan_gives_each_recipient_its_system_and_key() -> None:
    plans = plan_recipients(
        codes("000.00.13.H53", "000.00.00.H53"), {}, [PROVINCE, DEPARTMENT], 4, to_path
    )
    assert [(p.requested_code, p.recipient_code, p.system_id) for p in plans] == [
        ("000.00.13.H53", "000.00.13.H53", "00.53.W13"),
        ("000.00.00.H53", "000.00.00.H53", "00.53.W00"),
    ]
    assert all(p.route is RouteKind.INBOX for p in plans)
    assert plans[0].routing_key == routing_key(RouteKind.INBOX, AgencyCode("000.00.13.H53"), 4)


def test_merged_agency_redirects_to_its_successor() -> None:
    current = {"000.00.00.H41": "000.00.00.H53"}
    (plan,) = plan_recipients(codes("000.00.00.H41"), current, [PROVINCE], 4, to_path)
    assert plan.requested_code == "000.00.00.H41"
    assert plan.recipient_code == "000.00.00.H53"
    assert plan.system_id == "00.53.W00"
    assert plan.routing_key.startswith("inbox.H53.00.00.000.")


def test_two_recipients_merged_into_one_are_delivered_once() -> None:
    current = {"000.00.00.H41": "000.00.00.H53", "000.00.00.H42": "000.00.00.H53"}
    plans = plan_recipients(
        codes("000.00.00.H41", "000.00.00.H42"), current, [PROVINCE], 4, to_path
    )
    assert [(p.requested_code, p.recipient_code) for p in plans] == [
        ("000.00.00.H41", "000.00.00.H53")
    ]


def test_every_unserved_recipient_is_named_with_its_element() -> None:
    requested = codes("000.00.00.G22", "000.00.00.H53", "vxp.saas.03")
    with pytest.raises(RecipientUnknown) as caught:
        plan_recipients(requested, {}, [PROVINCE], 4, to_path)
    error = caught.value
    assert [(p.code, p.path) for p in error.problems] == [
        ("RECIPIENT_UNKNOWN", "MessageHeader/To[1]/OrganId"),
        ("RECIPIENT_UNKNOWN", "MessageHeader/To[3]/OrganId"),
    ]
    assert "000.00.00.G22" in error.detail and "vxp.saas.03" in error.detail
    assert "000.00.00.H53" not in error.detail
    assert error.vxp_code == "18"


def test_unserved_successor_is_reported_under_the_requested_element() -> None:
    with pytest.raises(RecipientUnknown) as caught:
        plan_recipients(
            codes("000.00.00.H53", "000.00.00.H41"),
            {"000.00.00.H41": "000.00.00.H99"},
            [PROVINCE],
            4,
            to_path,
        )
    (problem,) = caught.value.problems
    assert problem.path == "MessageHeader/To[2]/OrganId"
    assert "000.00.00.H99" in problem.message


def test_closed_recipients_are_refused_with_their_status_though_a_pattern_covers_them() -> None:
    closed = {"000.00.14.H53": "deleted", "000.00.15.H53": "retired"}
    with pytest.raises(RecipientUnknown) as caught:
        plan_recipients(
            codes("000.00.13.H53", "000.00.14.H53", "000.00.41.H53", "000.00.00.H41"),
            {"000.00.41.H53": "000.00.15.H53"},
            [PROVINCE],
            4,
            to_path,
            closed,
        )
    error = caught.value
    assert [(p.code, p.path) for p in error.problems] == [
        ("RECIPIENT_CLOSED", "MessageHeader/To[2]/OrganId"),
        ("RECIPIENT_CLOSED", "MessageHeader/To[3]/OrganId"),
        ("RECIPIENT_UNKNOWN", "MessageHeader/To[4]/OrganId"),
    ]
    assert "000.00.14.H53 (deleted)" in error.detail
    assert "000.00.15.H53 (retired)" in error.detail  # a merge into a retired successor
    assert "000.00.13.H53" not in error.detail and error.vxp_code == "18"
