"""Federation between nodes (SPEC §3.5, issue #12), in-process on both backends: a province
forwards what no local system serves to its peer, one send per peer, and the peer's DocId
is recorded; refusals, loops and a peer that is down behave like push failures."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from adapters.db.models import Message as MessageRow
from adapters.db.store import SqlStore
from adapters.peer_client import PeerClient
from adapters.signatures.xmldsig import sign_package
from adapters.vxp_client import VxpClient
from gateway.edxml.trace import delivered_copy
from gateway.operators import MessageFilter, Operator, Role, Selection
from gateway.services.directory import add_system
from tests.support.federation import Federation, url_of
from tests.support.nodes import Node
from tests.support.pki import intermediate, root_authority
from tests.support.polling import poll_until, until
from tests.support.samples import document, document_id_of, status

P53_AGENCY, P53_OTHER = "000.00.01.H53", "000.00.02.H53"
MINISTRY, MINISTRY_2 = "000.00.00.G01", "000.01.00.G01"
H54_AGENCY = "000.00.01.H54"
FAST: dict[str, Any] = {"push_retry_tiers_seconds": (0.2, 0.4), "push_max_attempts": 4}


def trace_organs(package: bytes) -> list[str]:
    """The OrganIds of the package's TraceHeaders, in document order."""
    header_list = re.search(rb"<[^>]*TraceHeaderList.*?</[^>]*TraceHeaderList>", package, re.S)
    assert header_list is not None
    return [m.decode() for m in re.findall(rb"OrganId>([^<]+)<", header_list.group(0))]


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


async def test_a_document_crosses_two_hops_and_its_statuses_come_back(
    federation: Federation,
) -> None:
    p53 = await federation.node("p53", "000.00.00.H53", **FAST)
    await federation.node("national", "000.00.00.G22", **FAST)
    p54 = await federation.node("p54", "000.00.00.H54", **FAST)
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    await federation.connect("p54", "national", "P54", serves=("#.H54",))
    sender = await system(p53, "sys.p53", P53_AGENCY)
    recipient = await system(p54, "sys.p54", H54_AGENCY)

    package = document(P53_AGENCY, [H54_AGENCY])
    message_id = (await sender.send_edoc(package, P53_AGENCY))["DocId"]
    [item] = await poll_until(recipient, 1, timeout=30)
    assert (item["from"], item["to"]) == (P53_AGENCY, H54_AGENCY)
    copy = await recipient.get_edoc(item["docId"])
    assert copy["status"] == "OK"
    body = base64.b64decode(copy["data"])
    # Each node on the way left its TraceHeader: the province, the national node, and P54.
    assert [o for o in trace_organs(body) if o.startswith("000.00.00.")][-3:] == [
        "000.00.00.H53",
        "000.00.00.G22",
        "000.00.00.H54",
    ]
    assert (await recipient.update_status(item["docId"], "done"))["status"] == "OK"

    for code in ("01", "03"):
        answer = await recipient.send_edoc(
            status(H54_AGENCY, P53_AGENCY, document_id_of(package), code),
            H54_AGENCY,
            messagetype="status",
        )
        assert answer["status"] == "OK", answer
    got = await poll_until(sender, 2, messagetype="status", timeout=30)
    assert {(g["from"], g["to"]) for g in got} == {(H54_AGENCY, P53_AGENCY)}

    async def status_seen() -> bool:
        states = await deliveries(p53, sender, message_id)
        return (states[H54_AGENCY].get("business_status") or {}).get("code") == "03"

    await until(status_seen)
    states = await deliveries(p53, sender, message_id)
    assert states[H54_AGENCY]["state"] == "forwarded"
    assert states[H54_AGENCY]["peer"] == "national"

    # How far it got behind the peer: P54's node took it from the national node's inbox.
    async def done_downstream() -> bool:
        states = await deliveries(p53, sender, message_id)
        return states[H54_AGENCY]["downstream_state"] == "done"

    await until(done_downstream)
    [sent] = (await sender.get_sent(message_id))["data"]
    assert sent["sendStatus"] == "forwarded" and "national" in sent["sendStatusDesc"]
    assert "done" in sent["sendStatusDesc"] and sent["receiveStatus"] == "03"
    # Nothing went twice anywhere: one message per node for the document.
    assert (await recipient.get_received())["data"] == []


class Outage(httpx.AsyncBaseTransport):
    """A peer's network path that can be cut: while `down`, every request fails to connect
    (what a stopped national node looks like to its provinces)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


async def province_behind_an_outage(
    federation: Federation,
) -> tuple[Node, VxpClient, VxpClient, Outage]:
    """A province whose way to the national node can be cut, a sender there and a ministry
    system at the national node."""
    province = await federation.node("p53", "000.00.00.H53", peer_poll_seconds=0, **FAST)
    national = await federation.node("national", "000.00.00.G22", **FAST)
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    outage = Outage(httpx.ASGITransport(app=national.app))
    client = province.runtime.peer_client
    assert isinstance(client, PeerClient)
    client.attach(url_of("national"), outage)
    sender = await system(province, "sys.p53", P53_AGENCY)
    ministry = await system(national, "sys.g01", MINISTRY)
    return province, sender, ministry, outage


async def test_a_peer_that_is_down_gets_everything_once_when_it_is_back(
    federation: Federation,
) -> None:
    province, sender, ministry, outage = await province_behind_an_outage(federation)

    outage.down = True
    sent = [
        (await sender.send_edoc(document(P53_AGENCY, [MINISTRY]), P53_AGENCY))["DocId"]
        for _ in range(5)
    ]

    async def all_retrying() -> bool:
        states = [(await deliveries(province, sender, m))[MINISTRY]["state"] for m in sent]
        return set(states) == {"retrying"}

    await until(all_retrying)
    assert [s.reachable for s in await federation.store("p53").peer_statuses()] == [False]
    outage.down = False

    async def all_forwarded() -> bool:
        states = [(await deliveries(province, sender, m))[MINISTRY]["state"] for m in sent]
        return set(states) == {"forwarded"}

    await until(all_forwarded)
    got = await poll_until(ministry, 5)
    assert len({item["docId"] for item in got}) == 5
    await until(province.quiet)
    await until(federation.members["national"].quiet)
    assert (await ministry.get_received())["data"] == []
    [status_line] = await federation.store("p53").peer_statuses()
    assert (status_line.reachable, status_line.backlog, status_line.forwarded) == (True, 0, 5)


async def test_a_resend_after_a_lost_answer_is_one_package_at_the_peer(
    federation: Federation,
) -> None:
    """The forwarder died after the peer accepted, before it recorded that: the next
    attempt sends the same bytes, the peer answers it as a duplicate with its DocId, and
    that counts as forwarded; the recipient behind the peer has it once."""
    province = await federation.node("p53", "000.00.00.H53", peer_poll_seconds=0, **FAST)
    national = await federation.node("national", "000.00.00.G22", **FAST)
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    sender = await system(province, "sys.p53", P53_AGENCY)
    ministry = await system(national, "sys.g01", MINISTRY)
    package = document(P53_AGENCY, [MINISTRY])
    # What the lost attempt delivered: the same package, sent by the province's system.
    p53_at_national = [
        s for s in await national.runtime.store.list_systems() if s.system_id == "P53"
    ]
    assert p53_at_national
    secret = await federation.store("p53").peer_secret("national")
    assert secret is not None
    first = await VxpClient(national.http, "P53", secret).send_edoc(package, P53_AGENCY)
    assert first["status"] == "OK"

    message_id = (await sender.send_edoc(package, P53_AGENCY))["DocId"]

    async def forwarded() -> bool:
        return (await deliveries(province, sender, message_id))[MINISTRY]["state"] == "forwarded"

    await until(forwarded)
    view = (await deliveries(province, sender, message_id))[MINISTRY]
    assert view["peer_doc_id"] == first["DocId"]
    assert len(await poll_until(ministry, 1)) == 1
    await until(national.quiet)
    assert (await ministry.get_received())["data"] == []


async def test_a_package_whose_trace_holds_this_node_is_not_forwarded(
    federation: Federation, tmp_path: Path
) -> None:
    province = await federation.node("p53", "000.00.00.H53", peer_poll_seconds=0, **FAST)
    national = await federation.node("national", "000.00.00.G22", **FAST)
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    sender = await system(province, "sys.p53", P53_AGENCY)
    await system(national, "sys.g01", MINISTRY)
    # A package that already passed through this node (it came back to it).
    original = tmp_path / "original.edxml"
    original.write_bytes(document(P53_AGENCY, [MINISTRY]))
    copy = delivered_copy(original, "000.00.00.H53", datetime.now())
    looped = b"".join(copy.chunks())
    message_id = (await sender.send_edoc(looped, P53_AGENCY))["DocId"]

    async def dead() -> bool:
        return (await deliveries(province, sender, message_id))[MINISTRY]["state"] == "dead"

    await until(dead)
    [delivery] = (
        await province.http.get(
            f"/api/v1/packages/{message_id}/timeline", headers=province.rest_headers(sender)
        )
    ).json()
    assert "loop" in delivery["timeline"][-1]["reason"]


async def test_an_item_this_node_refuses_is_acknowledged_fail_and_kept_for_operators(
    federation: Federation,
) -> None:
    """The national node takes unsigned packages; this province requires signatures: the
    item is refused here, acknowledged `fail` with the reason, and listed for operators."""
    national = await federation.node("national", "000.00.00.G22", **FAST)
    p54 = await federation.node("p54", "000.00.00.H54", signature_policy="require", **FAST)
    await federation.connect("p54", "national", "P54", serves=("#.H54",))
    ministry = await system(national, "sys.g01", MINISTRY)
    recipient = await system(p54, "sys.p54", H54_AGENCY)
    answer = await ministry.send_edoc(document(MINISTRY, [H54_AGENCY]), MINISTRY)
    assert answer["status"] == "OK"

    async def refused() -> bool:
        return bool(await federation.store("p54").refused_peer_items("national"))

    await until(refused)
    [item] = await federation.store("p54").refused_peer_items("national")
    assert item["recipient"] == H54_AGENCY and "SIGNATURE" in str(item["reason"]).upper()

    async def acknowledged_fail() -> bool:
        sent = (await ministry.get_sent(answer["DocId"]))["data"]
        return bool(sent) and sent[0]["sendStatus"] == "fail"

    await until(acknowledged_fail)
    assert (await recipient.get_received())["data"] == []


async def test_one_process_at_a_time_polls_a_peer(federation: Federation) -> None:
    await federation.node("p53", "000.00.00.H53", peer_poll_seconds=0)
    await federation.node("national", "000.00.00.G22")
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    store = federation.store("p53")
    assert await store.claim_peer_poll("national", "first", 60)
    assert not await store.claim_peer_poll("national", "second", 60)
    await store.finish_peer_poll("national", "first", None)
    assert await store.claim_peer_poll("national", "second", 60)


async def test_two_misconfigured_nodes_do_not_ping_pong_a_package(
    federation: Federation,
) -> None:
    """Each node names the other as its default route: a package for a code nobody serves
    goes over once and is refused there, instead of bouncing for ever."""
    a = await federation.node("h53", "000.00.00.H53", peer_poll_seconds=0, **FAST)
    b = await federation.node("h54", "000.00.00.H54", peer_poll_seconds=0, **FAST)
    await federation.connect("h53", "h54", "H53", serves=("#.H53",))
    await federation.connect("h54", "h53", "H54", serves=("#.H54",))
    sender = await system(a, "sys.h53", P53_AGENCY)
    nowhere = "000.00.09.H99"
    message_id = (await sender.send_edoc(document(P53_AGENCY, [nowhere]), P53_AGENCY))["DocId"]

    async def settled() -> bool:
        states = await deliveries(a, sender, message_id)
        return states[nowhere]["state"] in {"forwarded", "dead"}

    await until(settled)
    await until(a.quiet)
    await until(b.quiet)

    async def rows(node: Node) -> list[Any]:
        store = node.runtime.operators
        found, _ = await store.find_deliveries(MessageFilter(recipient=nowhere), 0, 10)
        return found

    [row] = await rows(b)
    assert (row.state, row.route) == ("dead", "peer")
    timeline = (await b.runtime.operators.message_detail(row.message_id)).deliveries[0].timeline
    assert "19" in (timeline[-1].reason or "")  # H53's node refused H53's own sender from H54
    assert len(await rows(a)) == 1


async def test_a_dead_forward_is_replayed_by_an_operator_once_the_peer_is_back(
    federation: Federation,
) -> None:
    province, sender, ministry, outage = await province_behind_an_outage(federation)
    outage.down = True
    message_id = (await sender.send_edoc(document(P53_AGENCY, [MINISTRY]), P53_AGENCY))["DocId"]

    async def dead() -> bool:
        return (await deliveries(province, sender, message_id))[MINISTRY]["state"] == "dead"

    await until(dead)
    assert outage.refused == FAST["push_max_attempts"]
    outage.down = False
    outcome = await province.runtime.store.replay(
        Selection(message_id=message_id),
        "national axis back",
        Operator("olga", Role.OPERATOR),
        False,
    )
    assert len(outcome.done) == 1 and not outcome.skipped

    async def forwarded() -> bool:
        return (await deliveries(province, sender, message_id))[MINISTRY]["state"] == "forwarded"

    await until(forwarded)
    assert len(await poll_until(ministry, 1)) == 1


async def test_a_package_signed_at_p53_verifies_at_every_node_on_the_way(
    federation: Federation, tmp_path: Path
) -> None:
    """Each relay appends its TraceHeader after the sender signed; under `require` the
    national node and P54 verify what the sender signed and store the bytes as received."""
    authority = root_authority()
    issuer = intermediate(authority)
    signer = issuer.issue("Van thu So (test)")
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "root.pem").write_bytes(authority.cert_pem)
    (trust / "intermediate.crl").write_bytes(issuer.crl_pem())
    strict: dict[str, Any] = {**FAST, "trust_dir": trust, "signature_policy": "require"}
    p53 = await federation.node("p53", "000.00.00.H53", **strict)
    national = await federation.node("national", "000.00.00.G22", **strict)
    p54 = await federation.node("p54", "000.00.00.H54", **strict)
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    await federation.connect("p54", "national", "P54", serves=("#.H54",))
    sender = await system(p53, "sys.p53", P53_AGENCY)
    recipient = await system(p54, "sys.p54", H54_AGENCY)
    package = sign_package(
        document(P53_AGENCY, [H54_AGENCY]),
        signer.key_pem,
        signer.cert_pem,
        extra_certs=[issuer.cert_pem],
    )
    assert (await sender.send_edoc(package, P53_AGENCY))["status"] == "OK"
    [item] = await poll_until(recipient, 1, timeout=30)
    for node, expected_set_aside in ((national, 1), (p54, 2)):
        [row] = [r for r in await signature_rows(node)]
        assert row == ("valid", expected_set_aside), (node.runtime.settings.node_code, row)


async def signature_rows(node: Node) -> list[tuple[str, int]]:
    store = node.runtime.store
    assert isinstance(store, SqlStore)
    async with store.transaction(read_only=True) as session:
        rows = (await session.execute(select(MessageRow.signature))).scalars().all()
    return [(str(s["outcome"]), int(s.get("trace_headers_set_aside", 0))) for s in rows if s]
