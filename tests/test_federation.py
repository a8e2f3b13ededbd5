"""Federation between nodes (SPEC §3.5, issue #12), in-process on both backends: a province
forwards what no local system serves to its peer, one send per peer, and the peer's DocId
is recorded; refusals, loops and a peer that is down behave like push failures."""

from __future__ import annotations

from typing import Any

from adapters.vxp_client import VxpClient
from gateway.services.directory import add_system
from tests.support.federation import Federation
from tests.support.nodes import Node
from tests.support.polling import poll_until, until
from tests.support.samples import document

P53_AGENCY, P53_OTHER = "000.00.01.H53", "000.00.02.H53"
MINISTRY, MINISTRY_2 = "000.00.00.G01", "000.01.00.G01"
H54_AGENCY = "000.00.01.H54"
FAST: dict[str, Any] = {"push_retry_tiers_seconds": (0.2, 0.4), "push_max_attempts": 4}


async def system(node: Node, system_id: str, *serves: str) -> VxpClient:
    return VxpClient(node.http, system_id, await add_system(node.runtime.store, system_id, serves))


async def deliveries(node: Node, client: VxpClient, message_id: str) -> dict[str, dict[str, Any]]:
    view = (
        await node.http.get(f"/api/v1/packages/{message_id}", headers=node.rest_headers(client))
    ).json()
    return {d["to"]: d for d in view["deliveries"]}


async def test_a_recipient_behind_the_national_node_gets_the_package_once(
    federation: Federation,
) -> None:
    province = await federation.node("p53", "000.00.00.H53", **FAST)
    national = await federation.node("national", "000.00.00.G22", **FAST)
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    sender = await system(province, "sys.p53", P53_AGENCY)
    local = await system(province, "sys.p53.other", P53_OTHER)
    ministry = await system(national, "sys.g01", MINISTRY, MINISTRY_2)

    package = document(P53_AGENCY, [MINISTRY, MINISTRY_2, P53_OTHER])
    answer = await sender.send_edoc(package, P53_AGENCY)
    assert answer["status"] == "OK", answer
    message_id = answer["DocId"]

    async def forwarded() -> bool:
        states = await deliveries(province, sender, message_id)
        return all(states[code]["state"] == "forwarded" for code in (MINISTRY, MINISTRY_2))

    await until(forwarded)
    states = await deliveries(province, sender, message_id)
    assert states[MINISTRY]["route"] == "peer"
    # One send for both recipients behind the peer: one message there, one DocId here.
    got = await poll_until(ministry, 2)
    assert {item["to"] for item in got} == {MINISTRY, MINISTRY_2}
    assert len({item["from"] for item in got}) == 1
    assert (await poll_until(local, 1))[0]["to"] == P53_OTHER
    copy = await ministry.get_edoc(got[0]["docId"])
    assert copy["status"] == "OK"
