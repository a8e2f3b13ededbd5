"""Reorganisation of the directory (issue #12 item 6; the 2025 mergers): `lienthong agencies
merge|rename|retire`, on both backends. Deliveries pending to a merged agency that were not
downloaded follow it (to another system, or behind a peer); the sender's receipt names the
merge; a retired code is refused with its own error; each change takes a directory version."""

from __future__ import annotations

import asyncio
from typing import Any

from click.testing import Result

from adapters.vxp_client import VxpClient
from gateway.records import AgencyRecord
from gateway.services.reorganisation import merge_agency
from gateway.types import AgencyCode
from tests.support.cli import run
from tests.support.federation import Federation
from tests.support.nodes import Node
from tests.support.polling import poll_until, until
from tests.support.samples import document
from tests.support.sdk import sdk_parse

SENDER = "000.00.01.H53"
OLD, NEW, OTHER = "000.00.31.H53", "000.00.32.H53", "000.00.33.H53"


async def cli(node: Node, *args: str) -> Result:
    """`lienthong ARGS` against the node's database, beside the running node (a thread: the
    command runs its own event loop)."""
    result = await asyncio.to_thread(run, node.backing, *args)
    assert result.exit_code == 0, result.output
    return result


async def states(node: Node, client: VxpClient, message_id: str) -> dict[str, dict[str, Any]]:
    """delivery id → the sender's view of it, with its timeline."""
    answer = await node.http.get(
        f"/api/v1/packages/{message_id}/timeline", headers=node.rest_headers(client)
    )
    assert answer.status_code == 200, answer.text
    return {d["delivery_id"]: d for d in answer.json()}


async def test_pending_deliveries_follow_a_merge_to_the_successor_s_system(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    old = await node.add_system("sys.old", OLD)
    new = await node.add_system("sys.new", NEW)
    await node.runtime.store.upsert_agencies(
        [AgencyRecord(AgencyCode(OLD), "Phòng cũ"), AgencyRecord(AgencyCode(NEW), "Phòng mới")]
    )
    waiting = (await sender.send_edoc(document(SENDER, [OLD]), SENDER))["DocId"]
    fetched = (await sender.send_edoc(document(SENDER, [OLD]), SENDER))["DocId"]
    both = (await sender.send_edoc(document(SENDER, [OLD, NEW]), SENDER))["DocId"]
    items = {item["docId"]: item for item in await poll_until(old, 3)}  # handed out, leased
    by_message = {
        message: next(iter(await states(node, sender, message))) for message in (waiting, fetched)
    }
    assert (await old.get_edoc(by_message[fetched]))["status"] == "OK"  # downloaded: stays
    assert set(items) >= set(by_message.values())

    merged = await cli(node, "agencies", "merge", OLD, "--into", NEW)
    assert f"{OLD} merged into {NEW}" in merged.output
    assert "1 pending deliveries re-routed" in merged.output and "1 cancelled" in merged.output

    # The one OLD's system had not downloaded is now in NEW's inbox, under the same id.
    got = {item["docId"]: item for item in await poll_until(new, 2)}
    moved = by_message[waiting]
    assert moved in got and got[moved]["to"] == NEW
    assert (await old.get_edoc(moved))["ErrorCode"] == "26"
    view = await states(node, sender, waiting)
    assert (view[moved]["to"], view[moved]["requested"], view[moved]["state"]) == (
        NEW,
        OLD,
        "available",
    )
    reasons = [t["reason"] or "" for t in view[moved]["timeline"]]
    assert any(f"{OLD} merged into {NEW}: re-routed to {NEW}" in r for r in reasons), reasons
    # The package that named both: OLD's delivery is cancelled, NEW has its own.
    both_states = {d["to"]: d for d in (await states(node, sender, both)).values()}
    assert both_states[OLD]["state"] == "cancelled" and both_states[NEW]["state"] == "available"
    # The downloaded one stays with OLD's system.
    assert (await states(node, sender, fetched))[by_message[fetched]]["to"] == OLD

    # Merging again changes nothing.
    again = await cli(node, "agencies", "merge", OLD, "--into", NEW)
    assert "already merged" in again.output and "0 pending" in again.output


async def test_the_receipt_names_the_merge_and_a_retired_code_has_its_own_error(
    node: Node,
) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    await node.add_system("sys.units", "*.*.*.H53")
    await node.runtime.store.upsert_agencies(
        [AgencyRecord(AgencyCode(code), f"Phòng {code}") for code in (OLD, NEW, OTHER)]
    )
    await cli(node, "agencies", "merge", OLD, "--into", NEW)
    retired = await cli(node, "agencies", "retire", OTHER)
    assert f"{OTHER} retired" in retired.output

    answer = sdk_parse("sendEdoc", await sender.send_edoc(document(SENDER, [OLD]), SENDER))
    assert (answer["status"], answer["ErrorCode"]) == ("OK", "0")
    assert answer["ErrorDesc"].startswith("Thanh cong. Canh bao:"), answer
    assert f"{OLD} was merged into {NEW}" in answer["ErrorDesc"] and answer["ErrorDesc"].isascii()
    rest = await node.http.post(
        "/api/v1/packages",
        content=document(SENDER, [OLD, OTHER.replace("33", "34")]),
        headers=node.rest_headers(sender),
    )
    assert rest.status_code == 201, rest.text
    [warning] = rest.json()["warnings"]
    assert (warning["code"], warning["path"], warning["severity"]) == (
        "RECIPIENT_MERGED",
        "MessageHeader/To[1]/OrganId",
        "warning",
    )
    assert {r["code"] for r in rest.json()["recipients"]} == {NEW, "000.00.34.H53"}

    refused = sdk_parse("sendEdoc", await sender.send_edoc(document(SENDER, [OTHER]), SENDER))
    assert (refused["status"], refused["ErrorCode"], refused["DocId"]) == ("FAIL", "23", "")
    assert "Don vi nhan da ngung hoat dong" in refused["ErrorDesc"]
    assert f"{OTHER} is retired" in refused["ErrorDesc"]
    problem = await node.http.post(
        "/api/v1/packages", content=document(SENDER, [OTHER]), headers=node.rest_headers(sender)
    )
    assert problem.status_code == 422 and problem.json()["code"] == "RECIPIENT_CLOSED"
    # A recipient that does not exist at all is still 18, also beside a closed one.
    mixed = await sender.send_edoc(document(SENDER, [OTHER, "000.00.01.G99"]), SENDER)
    assert mixed["ErrorCode"] == "18", mixed


async def test_rename_and_retire_take_versions_and_are_in_the_evidence(node: Node) -> None:
    store = node.runtime.store
    await store.upsert_agencies(
        [
            AgencyRecord(AgencyCode(OLD), "Phòng cũ"),
            AgencyRecord(AgencyCode(NEW), "Phòng con", parent_code=OLD),
            AgencyRecord(AgencyCode(OTHER), "Phòng khác"),
        ]
    )
    start = max(u.version for u in await store.directory_units())
    renamed = await cli(node, "agencies", "rename", OLD, "--name", "Phòng đổi tên")
    assert f"{OLD} renamed; directory version {start + 1}" in renamed.output
    same = await cli(node, "agencies", "rename", OLD, "--name", "Phòng đổi tên")
    assert "unchanged" in same.output
    refused = await asyncio.to_thread(run, node.backing, "agencies", "retire", OLD)
    assert refused.exit_code == 1 and "live sub-units" in refused.output and NEW in refused.output
    await cli(node, "agencies", "retire", NEW)
    await cli(node, "agencies", "retire", OLD)
    units = {u.code: u for u in await store.directory_units(start)}
    assert (units[NEW].status, units[NEW].version) == ("retired", start + 2)
    assert (units[OLD].status, units[OLD].version, units[OLD].name) == (
        "retired",
        start + 3,
        "Phòng đổi tên",
    )
    listing = await cli(node, "agencies", "list")
    assert f"{OLD}\tretired\tPhòng đổi tên" in listing.output
    refusals = [
        await asyncio.to_thread(run, node.backing, *args)
        for args in (
            ("agencies", "merge", OTHER, "--into", OTHER),
            ("agencies", "merge", "000.00.77.H53", "--into", OTHER),
            ("agencies", "merge", OTHER, "--into", NEW),
            ("agencies", "merge", OTHER, "--into", "not a code"),
            ("agencies", "rename", "000.00.77.H53", "--name", "X"),
        )
    ]
    assert [r.exit_code for r in refusals] == [1] * 5
    assert "itself" in refusals[0].output and "no agency 000.00.77.H53" in refusals[1].output
    assert f"{NEW} is retired" in refusals[2].output
    assert "not a valid identifier code" in refusals[3].output
    await store.flush_evidence()
    events = [(e["event"], e["details"]["code"]) for e in await store.evidence_page(0, 100)]
    assert events == [
        ("agency.rename", OLD),
        ("agency.retire", NEW),
        ("agency.retire", OLD),
    ]


async def test_a_pending_delivery_follows_a_merge_into_an_agency_behind_a_peer(
    federation: Federation,
) -> None:
    """Provinces merged (2025): an H53 unit merged into an H54 one that the national node
    serves. What waited in the H53 unit's inbox at the province is forwarded there."""
    fast = {"push_retry_tiers_seconds": (0.2, 0.4), "push_max_attempts": 4}
    province = await federation.node("p53", "000.00.00.H53", **fast)
    national = await federation.node("national", "000.00.00.G22", **fast)
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    h54_unit = "000.00.01.H54"
    sender = await province.add_system("sys.sender", SENDER)
    await province.add_system("sys.old", OLD)
    h54_secret_client = await national.add_system("sys.h54", "#.H54")
    for node in (province, national):
        await node.runtime.store.upsert_agencies(
            [
                AgencyRecord(AgencyCode(OLD), "Phòng H53"),
                AgencyRecord(AgencyCode(h54_unit), "Sở H54"),
            ]
        )
    message = (await sender.send_edoc(document(SENDER, [OLD]), SENDER))["DocId"]
    [delivery] = (await states(province, sender, message)).values()

    async def available() -> bool:
        return (await states(province, sender, message))[delivery["delivery_id"]][
            "state"
        ] == "available"

    await until(available)
    # The merge is the national decision; the province (whose system serves OLD) makes it too.
    await merge_agency(national.runtime.store, OLD, h54_unit, 4, "operator:national")
    outcome = await merge_agency(province.runtime.store, OLD, h54_unit, 4, "operator:p53")
    assert outcome.redirected == (delivery["delivery_id"],) and outcome.route == "peer national"

    async def forwarded() -> bool:
        view = (await states(province, sender, message))[delivery["delivery_id"]]
        return view["state"] == "forwarded"

    await until(forwarded)
    view = (await states(province, sender, message))[delivery["delivery_id"]]
    assert (view["to"], view["route"], view["peer"]) == (h54_unit, "peer", "national")
    [item] = await poll_until(h54_secret_client, 1)
    assert item["to"] == h54_unit
