"""Contract: the directory operations of the national-axis SDK on `/vxp` (SPEC §4.1, §3.5).

Answers are checked the way the SDK parses them: every field it reads is there with its JSON
type, never null, on success and on refusals. The field types below are written out from the
specification on purpose, not read from `gateway.api.vxp_answers`, so the table is tested too.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from adapters.vxp_client import VxpClient
from gateway.records import AgencyRecord
from gateway.services.audit import verify_log
from gateway.types import AgencyCode
from tests.support.nodes import Node
from tests.support.samples import document

PROVINCE = "000.00.00.H53"
DEPARTMENT = "000.00.13.H53"
DEPARTMENT_SYSTEM = "00.53.W13"
"""Serves the department and every unit under it (`*.*.13.H53`)."""

ENVELOPE = {"status": str, "ErrorCode": str, "ErrorDesc": str}
LIST_ENTRY = {"id": str, "pid": str, "code": str, "name": str, "mail": str, "oldCode": str}
QD20_ENTRY = {"id": str, "code": str, "name": str, "mail": str, "code102": str}
SYNC_ENTRY = {
    "id": str,
    "pid": str,
    "code": str,
    "name": str,
    "mail": str,
    "centerCode": str,
    "version": int,
    "deleted": bool,
    "modifyDate": str,
    "isAgency": bool,
}
ENTRIES = {
    "getAgenciesList": LIST_ENTRY,
    "getAgenciesListQD20": QD20_ENTRY,
    "getSynchronizeUnit": SYNC_ENTRY,
}
WIRE_TIME = re.compile(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}")


def sdk_reads(answer: dict[str, Any], operation: str, *, code: str = "0") -> dict[str, Any]:
    """Fail unless the SDK could parse `answer`: the envelope, and for a list operation a
    `data` list whose entries carry every field with exactly its JSON type (`bool` is not
    taken for `int`, nor `None` for anything)."""
    assert answer["_http_status"] == 200, answer
    for name, kind in ENVELOPE.items():
        assert type(answer.get(name)) is kind, (name, answer)
    assert (answer["status"], answer["ErrorCode"]) == (
        ("OK", "0") if code == "0" else ("FAIL", code)
    ), answer
    if code != "0":
        assert answer["ErrorDesc"].isascii() and answer["ErrorDesc"], answer
    if operation in ENTRIES:
        assert type(answer.get("data")) is list, answer
        for item in answer["data"]:
            assert {name: type(item.get(name)) for name in ENTRIES[operation]} == ENTRIES[
                operation
            ], item
    return answer


def unit(code: str, name: str, pcode: str = "", **extra: str) -> dict[str, str]:
    """A registerAgency body as the SDK builds it (`id` empty)."""
    return {
        "id": "",
        "pcode": pcode,
        "code": code,
        "name": name,
        "mail": "",
        "mobile": "",
        "fax": "",
        **extra,
    }


async def department(node: Node) -> VxpClient:
    """The province's People's Committee in the directory, and the department's system."""
    await node.runtime.store.upsert_agencies([AgencyRecord(AgencyCode(PROVINCE), "UBND tỉnh")])
    return await node.add_system(DEPARTMENT_SYSTEM, DEPARTMENT, "*.*.13.H53")


async def listed(client: VxpClient) -> dict[str, dict[str, Any]]:
    answer = sdk_reads(await client.get_agencies(), "getAgenciesList")
    return {row["code"]: row for row in answer["data"]}


async def units(client: VxpClient, from_version: str | None = None) -> dict[str, dict[str, Any]]:
    answer = sdk_reads(await client.synchronize_units(from_version), "getSynchronizeUnit")
    versions = [row["version"] for row in answer["data"]]
    assert versions == sorted(versions), "units come in version order"
    return {row["code"]: row for row in answer["data"]}


async def newest_version(client: VxpClient) -> int:
    return max((row["version"] for row in (await units(client)).values()), default=0)


async def test_pcode_may_be_the_callers_system_id_or_a_parent_code(node: Node) -> None:
    client = await department(node)
    registered = await client.register_agency(
        unit(
            DEPARTMENT,
            "Sở Thông tin và Truyền thông",
            pcode=DEPARTMENT_SYSTEM,
            mail="stttt@h53.gov.vn",
            mobile="02763822000",
        )
    )
    sdk_reads(registered, "registerAgency")
    # pcode a parent agency code; and pcode empty, where the code itself names the parent.
    sdk_reads(
        await client.register_agency(unit("000.01.13.H53", "Phòng Bưu chính", pcode=DEPARTMENT)),
        "registerAgency",
    )
    sdk_reads(
        await client.register_agency(unit("000.02.13.H53", "Trung tâm CNTT")), "registerAgency"
    )
    rows = await listed(client)
    assert rows[DEPARTMENT]["pid"] == rows[PROVINCE]["id"] != ""
    assert rows["000.01.13.H53"]["pid"] == rows["000.02.13.H53"]["pid"] == rows[DEPARTMENT]["id"]
    assert rows[PROVINCE]["pid"] == ""
    assert (rows[DEPARTMENT]["name"], rows[DEPARTMENT]["mail"]) == (
        "Sở Thông tin và Truyền thông",
        "stttt@h53.gov.vn",
    )
    assert rows["000.01.13.H53"]["mail"] == rows["000.01.13.H53"]["oldCode"] == ""


async def test_a_unit_with_no_ancestor_in_the_directory_is_a_root(node: Node) -> None:
    client = await node.add_system("00.99.W00", "#.H99", "vxp.saas.99")
    for code in ("000.00.31.H99", "vxp.saas.99"):  # standard shape without ancestor; other
        sdk_reads(
            await client.register_agency(unit(code, f"Đơn vị {code}", pcode="00.99.W00")),
            "registerAgency",
        )
    rows = await units(client)
    assert rows["000.00.31.H99"]["pid"] == rows["vxp.saas.99"]["pid"] == ""


async def test_outside_the_served_codes_is_refused_with_19(node: Node) -> None:
    client = await department(node)
    await node.runtime.store.upsert_agencies(
        [AgencyRecord(AgencyCode("000.00.14.H53"), "Sở Tư pháp")]
    )
    before = await units(client)
    refused = sdk_reads(
        await client.register_agency(unit("000.00.15.H53", "Sở Y tế")), "registerAgency", code="19"
    )
    assert "000.00.15.H53" in refused["ErrorDesc"]
    sdk_reads(await client.delete_agency("000.00.14.H53"), "deleteAgency", code="19")
    sdk_reads(await client.delete_agency(PROVINCE), "deleteAgency", code="19")
    assert await units(client) == before


BAD_BODIES: list[tuple[bytes | dict[str, Any], str]] = [
    (b"{not json", "JSON"),
    (b"\xff\xfe{}", "JSON"),
    (b'["000.00.13.H53"]', "JSON object"),
    (unit("", "Sở TTTT"), "code: the unit's identifier code is required"),
    ({"pcode": "", "name": "Sở TTTT"}, "code: the unit's identifier code is required"),
    (unit("000.00.13.H5-3", "Sở TTTT"), "000.00.13.H5-3"),
    (unit("000.00.13.H53." + "1" * 30, "Sở TTTT"), "at most 35"),
    (unit(DEPARTMENT, "   "), "name: the unit's name is required"),
    (unit(DEPARTMENT, "x" * 501), "name: is 501 characters, at most 500"),
    ({**unit(DEPARTMENT, "Sở TTTT"), "mail": ["a@b.vn"]}, "mail: must be text"),
    ({**unit(DEPARTMENT, "Sở TTTT"), "name": None}, "name: the unit's name is required"),
    (unit(DEPARTMENT, "Sở TTTT", pcode="000.00.77.H77"), "000.00.77.H77"),
    (unit(DEPARTMENT, "Sở TTTT", pcode=DEPARTMENT), "own parent"),
]


async def test_bad_input_is_refused_with_27_naming_the_field(node: Node) -> None:
    client = await department(node)
    before = await units(client)
    for body, named in BAD_BODIES:
        raw = body if isinstance(body, bytes) else None
        answer = (
            await client.call("registerAgency", body=raw)
            if raw is not None
            else await client.register_agency(body)
        )
        sdk_reads(answer, "registerAgency", code="27")
        assert named in answer["ErrorDesc"], (body, answer["ErrorDesc"])
    for bad_code in ("", "not a code"):
        answer = await client.delete_agency(bad_code)
        sdk_reads(answer, "deleteAgency", code="27")
        assert "AgencyCode" in answer["ErrorDesc"], answer
    # The envelope only, as below: list fields on a refusal are the error handler's.
    level = sdk_reads(await client.get_agencies_qd20("two"), "", code="27")
    assert "level" in level["ErrorDesc"]
    position = sdk_reads(await client.synchronize_units("-1"), "", code="27")
    assert "fromVersion" in position["ErrorDesc"]
    assert await units(client) == before
    assert (await node.runtime.store.evidence_head())[0] == 0, "refusals change nothing"


async def test_wrong_secret_is_refused_with_15_by_every_operation(node: Node) -> None:
    genuine = await department(node)
    impostor = VxpClient(node.http, genuine.system_id, "not-the-secret")
    for operation, params, body in [
        ("getAgenciesList", {}, b""),
        ("getAgenciesListQD20", {"level": "1"}, b""),
        ("getSynchronizeUnit", {}, b""),
        ("registerAgency", {}, b'{"id":"","pcode":"","code":"000.01.13.H53","name":"X"}'),
        ("deleteAgency", {"AgencyCode": PROVINCE}, b"{}"),
    ]:
        answer = await impostor.call(operation, params, body)
        # The envelope only: list fields on a refusal are the error handler's
        # (test_refusals_of_list_operations_carry_an_empty_list).
        sdk_reads(answer, "", code="15")
    assert set(await listed(genuine)) == {PROVINCE}


async def test_refusals_of_list_operations_carry_an_empty_list(node: Node) -> None:
    client = await department(node)
    impostor = VxpClient(node.http, client.system_id, "not-the-secret")
    refusals = [(operation, await impostor.call(operation), "15") for operation in ENTRIES]
    refusals += [
        ("getAgenciesListQD20", await client.get_agencies_qd20("two"), "27"),
        ("getSynchronizeUnit", await client.synchronize_units("x"), "27"),
    ]
    for operation, answer, code in refusals:
        sdk_reads(answer, operation, code=code)
        assert answer["data"] == []


async def test_every_directory_change_takes_the_next_node_wide_version(node: Node) -> None:
    client = await department(node)
    store = node.runtime.store
    start = await newest_version(client)
    steps: list[tuple[str, Any, str]] = [
        ("import", [AgencyRecord(AgencyCode("000.00.14.H53"), "Sở Tư pháp")], "000.00.14.H53"),
        ("rename", [AgencyRecord(AgencyCode("000.00.14.H53"), "Sở Tư pháp tỉnh")], "000.00.14.H53"),
        ("register", unit(DEPARTMENT, "Sở TTTT"), DEPARTMENT),
        ("re-register changed", unit(DEPARTMENT, "Sở TT&TT", mail="a@h53.gov.vn"), DEPARTMENT),
        ("register child", unit("000.01.13.H53", "Phòng A", pcode=DEPARTMENT), "000.01.13.H53"),
        ("delete", "000.01.13.H53", "000.01.13.H53"),
        ("register again", unit("000.01.13.H53", "Phòng A", pcode=DEPARTMENT), "000.01.13.H53"),
        (
            "merge",
            [
                AgencyRecord(
                    AgencyCode("000.00.14.H53"),
                    "Sở Tư pháp tỉnh",
                    status="merged",
                    successor_code=PROVINCE,
                )
            ],
            "000.00.14.H53",
        ),
        (
            "retire",
            [AgencyRecord(AgencyCode("000.00.14.H53"), "Sở Tư pháp tỉnh", status="retired")],
            "000.00.14.H53",
        ),
    ]
    for number, (what, change, code) in enumerate(steps, start=1):
        if isinstance(change, list):
            await store.upsert_agencies(change)
        elif isinstance(change, dict):
            sdk_reads(await client.register_agency(change), "registerAgency")
        else:
            sdk_reads(await client.delete_agency(change), "deleteAgency")
        rows = await units(client)
        assert rows[code]["version"] == start + number == await newest_version(client), what
        assert len({row["version"] for row in rows.values()}) == len(rows), what
    # Changes that change nothing take no version: peers must not sync the same data again.
    settled = await units(client)
    await store.upsert_agencies([AgencyRecord(AgencyCode(PROVINCE), "UBND tỉnh")])
    sdk_reads(
        await client.register_agency(unit("000.01.13.H53", "Phòng A", pcode=DEPARTMENT)),
        "registerAgency",
    )
    assert await units(client) == settled


async def test_tombstones_and_incremental_sync(node: Node) -> None:
    client = await department(node)
    for code, name in (
        (DEPARTMENT, "Sở TTTT"),
        ("000.01.13.H53", "Phòng A"),
        ("000.02.13.H53", "Phòng B"),
    ):
        sdk_reads(
            await client.register_agency(unit(code, name, pcode=DEPARTMENT_SYSTEM)),
            "registerAgency",
        )
    everything = await units(client)
    synced_to = max(row["version"] for row in everything.values())
    assert await units(client, str(synced_to)) == {}
    sdk_reads(await client.delete_agency("000.02.13.H53"), "deleteAgency")
    since = await units(client, str(synced_to))
    assert list(since) == ["000.02.13.H53"]
    tombstone = since["000.02.13.H53"]
    assert (tombstone["deleted"], tombstone["version"], tombstone["id"]) == (
        True,
        synced_to + 1,
        everything["000.02.13.H53"]["id"],
    )
    assert tombstone["pid"] == everything[DEPARTMENT]["id"]
    assert WIRE_TIME.fullmatch(tombstone["modifyDate"]), tombstone
    assert all(not row["deleted"] and row["isAgency"] for row in everything.values())
    assert "000.02.13.H53" in await units(client)  # a full sync keeps the tombstone
    assert "000.02.13.H53" not in await listed(client)
    qd20 = sdk_reads(await client.get_agencies_qd20(), "getAgenciesListQD20")["data"]
    assert "000.02.13.H53" not in {row["code"] for row in qd20}
    # Deleting again is not a change; deleting a unit that still has units under it is refused.
    sdk_reads(await client.delete_agency("000.02.13.H53"), "deleteAgency")
    assert await units(client, str(synced_to + 1)) == {}
    refused = sdk_reads(await client.delete_agency(DEPARTMENT), "deleteAgency", code="27")
    assert "000.01.13.H53" in refused["ErrorDesc"]
    # A retired unit is a tombstone too; a merged one still routes (to its successor).
    await node.runtime.store.upsert_agencies(
        [
            AgencyRecord(AgencyCode("000.03.13.H53"), "Phòng C", status="retired"),
            AgencyRecord(
                AgencyCode("000.04.13.H53"), "Phòng D", status="merged", successor_code=DEPARTMENT
            ),
        ]
    )
    closing = await units(client, str(synced_to + 1))
    assert {code: row["deleted"] for code, row in closing.items()} == {
        "000.03.13.H53": True,
        "000.04.13.H53": False,
    }
    # Re-registering brings a tombstone back, as a change with a version of its own.
    sdk_reads(await client.register_agency(unit("000.02.13.H53", "Phòng B mới")), "registerAgency")
    back = (await units(client))["000.02.13.H53"]
    assert (back["deleted"], back["name"]) == (False, "Phòng B mới")
    assert back["version"] == await newest_version(client) > synced_to + 1
    assert back["id"] == tombstone["id"]


async def test_center_code_is_the_local_system_serving_the_unit(node: Node) -> None:
    client = await department(node)
    await node.add_system("00.53.W00", "#.H53")
    await node.runtime.store.upsert_agencies(
        [
            AgencyRecord(AgencyCode("000.00.00.H60"), "Tỉnh khác"),
            AgencyRecord(AgencyCode("000.00.14.H53"), "Sở Tư pháp"),
        ]
    )
    sdk_reads(await client.register_agency(unit("000.01.13.H53", "Phòng A")), "registerAgency")
    centers = {code: row["centerCode"] for code, row in (await units(client)).items()}
    assert centers == {
        PROVINCE: "00.53.W00",
        "000.00.14.H53": "00.53.W00",
        "000.01.13.H53": DEPARTMENT_SYSTEM,  # the more specific pattern
        "000.00.00.H60": "",
    }


async def test_qd20_filters_by_level_and_shows_the_old_code(node: Node) -> None:
    client = await department(node)
    await node.runtime.store.upsert_agencies(
        [
            AgencyRecord(
                AgencyCode(DEPARTMENT), "Sở TTTT", parent_code=PROVINCE, old_code="000.00.13.H06"
            ),
            AgencyRecord(AgencyCode("000.00.14.H53"), "Sở cũ", status="retired"),
            AgencyRecord(AgencyCode("000.20.13.H53"), "Phòng", parent_code=DEPARTMENT),
            AgencyRecord(AgencyCode("28.22.H17"), "Ba nhóm"),
        ]
    )
    sdk_reads(await client.register_agency(unit("000.21.13.H53", "Phòng xóa")), "registerAgency")
    sdk_reads(await client.delete_agency("000.21.13.H53"), "deleteAgency")

    async def level(value: str | None) -> dict[str, dict[str, Any]]:
        answer = sdk_reads(await client.get_agencies_qd20(value), "getAgenciesListQD20")
        return {row["code"]: row for row in answer["data"]}

    live = {PROVINCE, DEPARTMENT, "000.20.13.H53", "28.22.H17"}
    assert set(await level(None)) == set(await level("")) == live
    assert set(await level("1")) == {PROVINCE}
    assert set(await level("2")) == {DEPARTMENT}
    assert set(await level("3")) == {"000.20.13.H53", "28.22.H17"}
    assert await level("4") == {}
    rows = await level(None)
    assert (rows[DEPARTMENT]["code102"], rows[PROVINCE]["code102"]) == ("000.00.13.H06", "")
    assert rows[DEPARTMENT]["id"] == (await listed(client))[DEPARTMENT]["id"]


async def test_routing_to_a_deleted_or_retired_code_is_refused(node: Node) -> None:
    client = await department(node)
    sender = await node.add_system("sys.sender", "000.00.01.H53")
    await node.runtime.store.upsert_agencies(
        [AgencyRecord(AgencyCode("000.03.13.H53"), "Phòng C", status="retired")]
    )
    sdk_reads(await client.register_agency(unit("000.02.13.H53", "Phòng B")), "registerAgency")
    sdk_reads(await client.delete_agency("000.02.13.H53"), "deleteAgency")
    for code, status in (("000.02.13.H53", "deleted"), ("000.03.13.H53", "retired")):
        refused = await sender.send_edoc(document("000.00.01.H53", [code]), "000.00.01.H53")
        # Its own error (RECIPIENT_CLOSED, 23), not "does not exist" (18).
        assert (refused["status"], refused["ErrorCode"]) == ("FAIL", "23"), refused
        assert refused["ErrorDesc"].startswith("Don vi nhan da ngung hoat dong"), refused
        assert f"{code} is {status}" in refused["ErrorDesc"], refused
    # Registered again, it receives packages again.
    sdk_reads(await client.register_agency(unit("000.02.13.H53", "Phòng B")), "registerAgency")
    accepted = await sender.send_edoc(document("000.00.01.H53", ["000.02.13.H53"]), "000.00.01.H53")
    assert accepted["status"] == "OK", accepted


async def test_operator_owned_and_unknown_codes_are_refused_precisely(node: Node) -> None:
    client = await department(node)
    await node.runtime.store.upsert_agencies(
        [
            AgencyRecord(AgencyCode("000.03.13.H53"), "Phòng C", status="retired"),
            AgencyRecord(
                AgencyCode("000.04.13.H53"), "Phòng D", status="merged", successor_code=DEPARTMENT
            ),
        ]
    )
    before = await units(client)
    for code, said in (("000.03.13.H53", "retired"), ("000.04.13.H53", "merged into")):
        answer = await client.register_agency(unit(code, "Giành lại"))
        sdk_reads(answer, "registerAgency", code="27")
        assert said in answer["ErrorDesc"], answer
    unknown = sdk_reads(await client.delete_agency("000.09.13.H53"), "deleteAgency", code="26")
    assert "000.09.13.H53" in unknown["ErrorDesc"]
    missing = sdk_reads(await client.call("deleteAgency", {}, b"{}"), "deleteAgency", code="27")
    assert "AgencyCode" in missing["ErrorDesc"]
    assert await units(client) == before


async def test_registrations_and_deletions_are_in_the_evidence_log(node: Node) -> None:
    client = await department(node)
    sdk_reads(
        await client.register_agency(
            unit(
                DEPARTMENT,
                "Sở TTTT",
                pcode=DEPARTMENT_SYSTEM,
                mail="a@h53.gov.vn",
                mobile="0276 3822 000",
                fax="0276 3822 001",
            )
        ),
        "registerAgency",
    )
    sdk_reads(await client.register_agency(unit(DEPARTMENT, "Sở TTTT")), "registerAgency")
    sdk_reads(await client.register_agency(unit(DEPARTMENT, "Sở TTTT")), "registerAgency")
    sdk_reads(await client.delete_agency(DEPARTMENT), "deleteAgency")
    sdk_reads(await client.delete_agency(DEPARTMENT), "deleteAgency")
    entries = await node.runtime.store.evidence_page(0, 100)
    versions = {code: row["version"] for code, row in (await units(client)).items()}
    assert [
        (e["event"], e["actor"], e["details"]["code"], e["details"].get("change")) for e in entries
    ] == [
        ("agency.register", f"system:{DEPARTMENT_SYSTEM}", DEPARTMENT, "added"),
        ("agency.register", f"system:{DEPARTMENT_SYSTEM}", DEPARTMENT, "updated"),
        ("agency.delete", f"system:{DEPARTMENT_SYSTEM}", DEPARTMENT, None),
    ]
    first = entries[0]["details"]
    assert (first["name"], first["parent"], first["mail"], first["mobile"], first["fax"]) == (
        "Sở TTTT",
        PROVINCE,
        "a@h53.gov.vn",
        "0276 3822 000",
        "0276 3822 001",
    )
    assert entries[1]["details"]["mail"] is None
    assert entries[2]["details"]["version"] == versions[DEPARTMENT]
    assert entries[2]["details"]["previous_status"] == "active"
    assert (await verify_log(node.runtime.store)).ok


async def test_concurrent_registrations_take_distinct_consecutive_versions(node: Node) -> None:
    """On PostgreSQL these run in parallel transactions: without the locked counter two of
    them would read the same newest version."""
    client = await department(node)
    start = await newest_version(client)
    answers = await asyncio.gather(
        *(
            client.register_agency(
                unit(f"000.{n:02d}.13.H53", f"Phòng {n}", pcode=DEPARTMENT_SYSTEM)
            )
            for n in range(1, 21)
        )
    )
    for answer in answers:
        sdk_reads(answer, "registerAgency")
    versions = sorted(row["version"] for row in (await units(client, str(start))).values())
    assert versions == list(range(start + 1, start + 21))
