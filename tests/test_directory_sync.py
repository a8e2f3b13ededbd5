"""Directory sync between nodes (SPEC §3.5, issue #12 item 6), in-process on both backends: a
province pulls the national directory incrementally (`getSynchronizeUnit` from its stored
version, in pages; tombstones; merges and renames), falls back to `getAgenciesList`, never
takes a peer's copy of what it owns, and routes an old code to its successor once a merge at
the national node reached it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from adapters.db.store import SqlStore
from adapters.peer_client import PeerClient
from adapters.vxp_client import VxpClient
from gateway.directory_sync import LIST_OPERATION, SYNC_OPERATION
from gateway.records import AgencyRecord
from gateway.services.directory import add_system
from gateway.services.directory_sync import DirectorySync, DirectorySyncer, DirectorySyncFailed
from gateway.services.reorganisation import merge_agency, retire_agency
from gateway.types import AgencyCode
from tests.support.cli import run
from tests.support.federation import Federation, url_of
from tests.support.nodes import Backing, Node
from tests.support.polling import poll_until, until
from tests.support.samples import document

MINISTRY, MINISTRY_UNIT, MINISTRY_NEW = "000.00.00.G01", "000.00.01.G01", "000.00.02.G01"
H54, H54_UNIT = "000.00.00.H54", "000.00.01.H54"
P53_AGENCY = "000.00.01.H53"
FAST: dict[str, Any] = {"push_retry_tiers_seconds": (0.2, 0.4), "push_max_attempts": 4}


def agency(code: str, name: str, parent: str | None = None, **extra: Any) -> AgencyRecord:
    return AgencyRecord(AgencyCode(code), name, parent_code=parent, **extra)


NATIONAL_DIRECTORY = [
    agency(MINISTRY, "Bộ Nội vụ"),
    agency(MINISTRY_UNIT, "Vụ Tổ chức", MINISTRY),
    agency(H54, "UBND tỉnh H54"),
    agency(H54_UNIT, "Sở Nội vụ H54", H54),
]


async def two_nodes(federation: Federation, **overrides: Any) -> tuple[Node, Node]:
    """Province p53 (default peer: the national node, where it is system P53 for #.H53)."""
    province = await federation.node("p53", "000.00.00.H53", **FAST, **overrides)
    national = await federation.node("national", "000.00.00.G22", **FAST)
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    await national.runtime.store.upsert_agencies(NATIONAL_DIRECTORY)
    return province, national


def syncer(node: Node, page_size: int = 10_000) -> DirectorySync:
    store = node.runtime.store
    assert isinstance(store, SqlStore)
    return DirectorySync(store, node.runtime.peer_client, page_size)


async def directory(node: Node) -> dict[str, AgencyRecord]:
    return {a.code: a for a in await node.runtime.store.list_agencies()}


async def national_version(node: Node) -> int:
    return max(u.version for u in await node.runtime.store.directory_units())


async def test_incremental_sync_follows_adds_renames_merges_and_deletions(
    federation: Federation,
) -> None:
    province, national = await two_nodes(federation)
    first = await syncer(province, page_size=3).sync("national")
    assert (first.operation, first.received, first.pages) == (SYNC_OPERATION, 4, 2)
    assert (first.counts.added, first.from_version, first.to_version) == (
        4,
        None,
        await national_version(national),
    )
    here = await directory(province)
    assert {code: (a.name, a.parent_code, a.peer) for code, a in here.items()} == {
        MINISTRY: ("Bộ Nội vụ", None, "national"),
        MINISTRY_UNIT: ("Vụ Tổ chức", MINISTRY, "national"),
        H54: ("UBND tỉnh H54", None, "national"),
        H54_UNIT: ("Sở Nội vụ H54", H54, "national"),
    }
    statuses = await province.runtime.store.peer_statuses()
    assert statuses[0].directory_version == first.to_version

    # At the national node: an addition, a rename, a merge, a retirement, and a deletion by
    # the system that registered a unit.
    store = national.runtime.store
    await store.upsert_agencies([agency(MINISTRY_NEW, "Vụ Công chức", MINISTRY)])
    await store.rename_agency(MINISTRY, "Bộ Nội vụ (mới)", "operator:test")
    await merge_agency(store, MINISTRY_UNIT, MINISTRY_NEW, 4, "operator:test")
    h54 = await national_system(national, "sys.h54", "#.H54")
    registered = await h54.register_agency(
        {"id": "", "pcode": "", "code": "000.00.09.H54", "name": "Phòng tạm", "mail": ""}
    )
    assert registered["status"] == "OK", registered
    assert (await h54.delete_agency("000.00.09.H54"))["status"] == "OK"
    await retire_agency(store, H54_UNIT, "operator:test")

    second = await syncer(province, page_size=3).sync("national")
    # Only what changed since the first sync: 5 rows (the registered-then-deleted unit once).
    assert (second.received, second.from_version) == (5, first.to_version)
    assert second.to_version == await national_version(national)
    here = await directory(province)
    assert here[MINISTRY].name == "Bộ Nội vụ (mới)"
    assert (here[MINISTRY_NEW].name, here[MINISTRY_NEW].parent_code) == ("Vụ Công chức", MINISTRY)
    assert (here[MINISTRY_UNIT].status, here[MINISTRY_UNIT].successor_code) == (
        "merged",
        MINISTRY_NEW,
    )
    assert here[H54_UNIT].status == "retired"
    assert here["000.00.09.H54"].status == "deleted"  # a tombstone of a unit never seen alive
    assert second.counts.closed == 2
    assert await province.runtime.store.current_codes([MINISTRY_UNIT]) == {
        MINISTRY_UNIT: MINISTRY_NEW
    }

    third = await syncer(province).sync("national")
    assert (third.received, third.counts.added + third.counts.updated) == (0, 0)
    assert third.to_version == second.to_version
    # The changes took versions at the province too: its own peers sync them from it.
    units = {u.code: u for u in await province.runtime.store.directory_units(0)}
    assert units[MINISTRY_UNIT].status == "merged" and units[H54_UNIT].status == "retired"


async def national_system(node: Node, system_id: str, *serves: str) -> VxpClient:
    return VxpClient(node.http, system_id, await add_system(node.runtime.store, system_id, serves))


async def test_after_a_merge_at_the_national_node_the_province_routes_the_old_code_to_the_successor(
    federation: Federation,
) -> None:
    province, national = await two_nodes(federation)
    ministry = await national_system(national, "sys.g01", "#.G01")
    sender = await national_system(province, "sys.p53", P53_AGENCY)
    await national.runtime.store.upsert_agencies([agency(MINISTRY_NEW, "Vụ mới", MINISTRY)])
    await syncer(province).sync("national")
    await merge_agency(national.runtime.store, MINISTRY_UNIT, MINISTRY_NEW, 4, "operator:test")
    await retire_agency(national.runtime.store, H54_UNIT, "operator:test")
    report = await syncer(province).sync("national")
    assert report.received == 2

    answer = await sender.send_edoc(document(P53_AGENCY, [MINISTRY_UNIT]), P53_AGENCY)
    assert (answer["status"], answer["ErrorCode"]) == ("OK", "0"), answer
    assert "Canh bao" in answer["ErrorDesc"] and MINISTRY_NEW in answer["ErrorDesc"], answer
    [item] = await poll_until(ministry, 1)
    assert item["to"] == MINISTRY_NEW
    view = (
        await province.http.get(
            f"/api/v1/packages/{answer['DocId']}", headers=province.rest_headers(sender)
        )
    ).json()
    [delivery] = view["deliveries"]
    assert (delivery["requested"], delivery["to"], delivery["route"]) == (
        MINISTRY_UNIT,
        MINISTRY_NEW,
        "peer",
    )

    # A code retired at the national node is refused at the province with its own error.
    refused = await sender.send_edoc(document(P53_AGENCY, [H54_UNIT]), P53_AGENCY)
    assert (refused["status"], refused["ErrorCode"]) == ("FAIL", "23"), refused
    assert f"{H54_UNIT} is retired" in refused["ErrorDesc"]


async def test_what_this_node_owns_is_never_overwritten_by_a_peer(
    federation: Federation,
) -> None:
    province, national = await two_nodes(federation)
    await national_system(province, "sys.p53", "#.H53")  # the whole province is served here
    await province.runtime.store.upsert_agencies(
        [agency("000.00.05.H53", "Sở Y tế (tỉnh)"), agency("000.00.00.G05", "Bộ Y tế (nhập)")]
    )
    await national.runtime.store.upsert_agencies(
        [
            agency("000.00.05.H53", "Sở Y tế (trung ương)"),
            agency("000.00.06.H53", "Sở mới ở trung ương"),
            agency("000.00.00.G05", "Bộ Y tế"),
        ]
    )
    report = await syncer(province).sync("national")
    assert (report.served_here, report.counts.kept_own, report.counts.added) == (2, 1, 4)
    here = await directory(province)
    assert (here["000.00.05.H53"].name, here["000.00.05.H53"].peer) == ("Sở Y tế (tỉnh)", None)
    assert "000.00.06.H53" not in here  # served here: the province is its authority
    assert (here["000.00.00.G05"].name, here["000.00.00.G05"].peer) == ("Bộ Y tế (nhập)", None)

    # --adopt hands rows imported before the node was connected to the peer they route to;
    # what a local system serves stays the province's all the same.
    adopted = await syncer(province).sync("national", full=True, adopt=True)
    assert adopted.counts.updated == 1
    here = await directory(province)
    assert (here["000.00.00.G05"].name, here["000.00.00.G05"].peer) == ("Bộ Y tế", "national")
    assert here["000.00.05.H53"].name == "Sở Y tế (tỉnh)"

    # A later operator change makes the row the province's own again.
    await province.runtime.store.rename_agency("000.00.00.G05", "Bộ Y tế (tỉnh gọi)", "op")
    await national.runtime.store.rename_agency("000.00.00.G05", "Bộ Y tế (2026)", "op")
    await syncer(province).sync("national")
    assert (await directory(province))["000.00.00.G05"].name == "Bộ Y tế (tỉnh gọi)"


async def test_a_peer_teaches_only_the_codes_routed_to_it(federation: Federation) -> None:
    """The national node with province p53 as a peer for #.H53 (and no local system there):
    it takes p53's H53 units, not what p53 has of other provinces or ministries."""
    province = await federation.node("p53", "000.00.00.H53", **FAST)
    national = await federation.node("national", "000.00.00.G22", **FAST)
    await federation.connect(
        "national", "p53", "NATIONAL", ("#.H53",), serves=("000.00.00.G22",), default=False
    )
    await province.runtime.store.upsert_agencies(
        [*NATIONAL_DIRECTORY, agency("000.00.07.H53", "Sở Xây dựng H53")]
    )
    report = await syncer(national).sync("p53")
    assert (report.counts.added, report.other_route) == (1, 4), report.summary()
    assert {code: a.peer for code, a in (await directory(national)).items()} == {
        "000.00.07.H53": "p53"
    }


class WithoutSynchronizeUnit:
    """A peer's app that lacks getSynchronizeUnit: HTTP `status` with a FAIL `code` answer."""

    def __init__(self, app: Any, status: int, code: str = "27") -> None:
        self._app, self._status, self._code = app, status, code

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/getSynchronizeUnit"):
            body = b'{"status":"FAIL","ErrorCode":"%s","ErrorDesc":"Loi","data":[]}' % (
                self._code.encode()
            )
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": self._status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)


async def reattach(client: PeerClient, app: Any) -> None:
    """Reach the national node through `app` from now on (the client's connections to it,
    made through the previous transport, are closed)."""
    await client.close()
    client.attach(url_of("national"), httpx.ASGITransport(app=app))


async def test_a_peer_without_synchronize_unit_is_listed_instead(
    federation: Federation,
) -> None:
    province, national = await two_nodes(federation)
    client = province.runtime.peer_client
    assert isinstance(client, PeerClient)
    for status in (404, 200):
        await reattach(client, WithoutSynchronizeUnit(national.app, status))
        report = await syncer(province).sync("national")
        assert report.operation == LIST_OPERATION, report.summary()
        assert report.fallback_reason and (
            "404" in report.fallback_reason or "27" in report.fallback_reason
        )
    here = await directory(province)
    assert here[H54_UNIT].parent_code == H54  # `pid` resolved within the listing
    assert {a.peer for a in here.values()} == {"national"}
    # A listing that no longer names a code does not close it here (only tombstones do).
    await national.runtime.store.delete_agency(H54_UNIT, "operator:test")
    report = await syncer(province).sync("national")
    assert report.operation == LIST_OPERATION and report.received == 3
    assert (await directory(province))[H54_UNIT].status == "active"
    assert (await province.runtime.store.peer_statuses())[0].directory_version is None
    # Wrong credentials are not a missing operation: no listing, the sync fails.
    await reattach(client, WithoutSynchronizeUnit(national.app, 200, "15"))
    with pytest.raises(DirectorySyncFailed, match="FAIL 15"):
        await syncer(province).sync("national")


async def test_the_scheduled_sync_pulls_changes_by_itself(federation: Federation) -> None:
    province, national = await two_nodes(federation, directory_sync_seconds=0.5)
    await until(lambda: _named(province, H54_UNIT, "Sở Nội vụ H54"))
    await national.runtime.store.rename_agency(H54_UNIT, "Sở Nội vụ (đổi tên)", "op")
    await until(lambda: _named(province, H54_UNIT, "Sở Nội vụ (đổi tên)"))


async def test_one_process_at_a_time_claims_a_peer_s_sync(federation: Federation) -> None:
    province, _ = await two_nodes(federation)
    store = province.runtime.store
    assert isinstance(store, SqlStore)
    claims = [store.claim_directory_sync("national", 0.5) for _ in range(4)]
    assert sorted(await asyncio.gather(*claims)) == [False, False, False, True]
    settings = province.runtime.settings.model_copy(update={"directory_sync_seconds": 0.5})
    other = DirectorySyncer(settings, store, province.runtime.peer_client)
    assert await other.run_once() == []  # claimed: another process syncs it now
    await asyncio.sleep(0.5)
    [report] = await other.run_once()  # due again
    assert report.counts.added == 4
    assert await other.run_once() == []


async def _named(node: Node, code: str, name: str) -> bool:
    found = (await directory(node)).get(code)
    return found is not None and found.name == name


# -- the command, against a peer that is a real `lienthong serve` -------------------------


@contextlib.contextmanager
def serving(node: Backing) -> Iterator[str]:
    """`lienthong serve` for `node` on a free loopback port; yields its /vxp base."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(node.data_dir / "serve.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--no-migrate", "--port", str(port)]
        + ["--host", "127.0.0.1"],
        env=node.environment(),
        cwd=node.data_dir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (node.data_dir / "serve.log").read_text()
            with contextlib.suppress(httpx.HTTPError, ValueError):
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200 and ready.json().get("broker") == "ok":
                    break
            assert time.monotonic() < deadline, "lienthong serve was not ready in 60 s"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/vxp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def test_agencies_sync_from_a_peer_over_http(
    backing: Backing, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    national = Backing(backing.backend, tmp_path / "national", request)
    asyncio.run(national.create())
    try:
        listing = tmp_path / "national.csv"
        listing.write_text(
            "code,name,parent,mail\n"
            f"{MINISTRY},Bộ Nội vụ,,\n{MINISTRY_UNIT},Vụ Tổ chức,{MINISTRY},\n"
            f"{MINISTRY_NEW},Vụ Công chức,{MINISTRY},\n",
            encoding="utf-8",
        )
        ok(run(national, "agencies", "import", str(listing)))
        ok(run(national, "systems", "add", "P53", "--serves", "#.H53", "--secret", "p53-secret"))
        with serving(national) as url:
            peer = ("national", "--url", url, "--system-id", "P53", "--secret", "p53-secret")
            ok(run(backing, "peers", "add", *peer, "--default"))
            first = ok(run(backing, "agencies", "sync", "--from", "national"))
            assert "national: getSynchronizeUnit; 3 received in 1 page(s); 3 added" in first
            assert "version 0 -> 3" in first
            ok(run(national, "agencies", "merge", MINISTRY_UNIT, "--into", MINISTRY_NEW))
            second = ok(run(backing, "agencies", "sync", "--from", "national"))
            assert "1 received" in second and "1 updated" in second and "version 3 -> 4" in second
            rows = ok(run(backing, "agencies", "list"))
            assert (
                f"{MINISTRY_UNIT}\tmerged\tVụ Tổ chức -> {MINISTRY_NEW}\t(from peer national)"
                in rows
            )
            full = ok(run(backing, "agencies", "sync", "--from", "national", "--full"))
            assert "3 received" in full and "3 unchanged" in full
        down = run(backing, "agencies", "sync", "--from", "national")
        assert down.exit_code == 1 and down.output.startswith("Error: national: "), down.output
        unknown = run(backing, "agencies", "sync", "--from", "nowhere")
        assert unknown.exit_code == 1 and "no peer nowhere" in unknown.output
    finally:
        asyncio.run(national.remove())
