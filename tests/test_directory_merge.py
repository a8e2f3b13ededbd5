"""Renamed and merged agencies (2025 reorganisation): packages follow the successor."""

from __future__ import annotations

from gateway.records import AgencyRecord
from gateway.types import AgencyCode
from tests.support.nodes import Node
from tests.support.polling import poll_until
from tests.support.samples import document

SENDER = "000.00.01.H53"


def merged(code: str, into: str) -> AgencyRecord:
    return AgencyRecord(AgencyCode(code), f"Cũ {code}", status="merged", successor_code=into)


async def test_successor_chains_cycles_and_unknown_codes(node: Node) -> None:
    store = node.runtime.store
    await store.upsert_agencies(
        [
            merged("000.00.31.H53", "000.00.32.H53"),
            merged("000.00.32.H53", "000.00.00.H99"),
            AgencyRecord(AgencyCode("000.00.00.H99"), "Tỉnh mới"),
            merged("000.00.41.H53", "000.00.42.H53"),
            merged("000.00.42.H53", "000.00.41.H53"),
        ]
    )
    assert await store.current_codes(
        ["000.00.31.H53", "000.00.41.H53", "000.00.77.H77", "000.00.00.H99"]
    ) == {
        "000.00.31.H53": "000.00.00.H99",  # two hops
        "000.00.41.H53": "000.00.42.H53",  # a cycle stops where it would repeat
        "000.00.77.H77": "000.00.77.H77",  # unknown: itself
        "000.00.00.H99": "000.00.00.H99",
    }


async def test_a_package_to_a_merged_agency_reaches_its_successor(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    successor = await node.add_system("sys.new", "000.00.00.H99")
    await node.runtime.store.upsert_agencies([merged("000.00.31.H53", "000.00.00.H99")])
    message_id = (await sender.send_edoc(document(SENDER, ["000.00.31.H53"]), SENDER))["DocId"]
    [item] = await poll_until(successor, 1)
    assert item["to"] == "000.00.00.H99"
    view = (
        await node.http.get(
            f"/api/v1/packages/{message_id}?timeline=true", headers=node.rest_headers(sender)
        )
    ).json()
    [delivery] = view["deliveries"]
    assert (delivery["to"], delivery["requested"]) == ("000.00.00.H99", "000.00.31.H53")


async def test_directory_through_both_apis(node: Node) -> None:
    client = await node.add_system("sys.sender", SENDER)
    await node.runtime.store.upsert_agencies(
        [
            AgencyRecord(AgencyCode("000.00.00.H53"), "UBND tỉnh"),
            AgencyRecord(
                AgencyCode("000.00.13.H53"),
                "Sở TTTT",
                parent_code="000.00.00.H53",
                old_code="000.00.13.H06",
            ),
            AgencyRecord(AgencyCode("000.00.00.H60"), "Tỉnh khác"),
        ]
    )
    rows = {row["code"]: row for row in (await client.get_agencies())["data"]}
    assert set(rows) == {"000.00.00.H53", "000.00.13.H53", "000.00.00.H60"}
    assert rows["000.00.13.H53"]["pid"] == rows["000.00.00.H53"]["id"]
    assert rows["000.00.00.H53"]["pid"] == ""  # never null: the SDK would drop the list
    assert rows["000.00.13.H53"]["oldCode"] == "000.00.13.H06"
    province = (
        await node.http.get(
            "/api/v1/agencies", params={"suffix": "H53"}, headers=node.rest_headers(client)
        )
    ).json()
    assert [a["code"] for a in province] == ["000.00.00.H53", "000.00.13.H53"]
    assert province[1]["parent_code"] == "000.00.00.H53"
