"""The quarterly report (SPEC §4.3, issue #13 item 3): counting rules exactly, on traffic
made through the real API and SDK client, on both backends; period boundaries in local time;
the four formats from the CLI and the operator API."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from asgi_lifespan import LifespanManager
from openpyxl import load_workbook
from sqlalchemy import update

from adapters.broker.rabbitmq import RabbitMQBroker
from adapters.db.models import Message
from adapters.db.store import SqlStore
from adapters.vxp_client import VxpClient
from gateway.api.app import create_app
from gateway.errors import InvalidRequest
from gateway.records import AgencyRecord
from gateway.reports import Period, ReportFormat, quarterly_report, render
from gateway.reports.quarterly import AgencyTraffic, QuarterlyReport
from gateway.services.directory import add_system
from gateway.types import AgencyCode
from tests.support.cli import run
from tests.support.federation import Federation
from tests.support.nodes import Backing, Node, NodeFactory
from tests.support.operators import add_operator
from tests.support.polling import poll_until, until
from tests.support.receiver import Receiver, running
from tests.support.samples import document, document_id_of, status

T = TypeVar("T")
REPORT = "/api/v1/operator/reports/quarterly"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
A, B, C, D, E = "000.00.01.H53", "000.00.00.H53", "000.01.02.H53", "001.01.02.H53", "000.00.05.H53"
"""Levels 2, 1, 3, 4, 2; E's system takes pushes."""
FAST_PUSH: dict[str, Any] = {
    "push_retry_tiers_seconds": (0.2, 0.4),
    "push_max_attempts": 2,
    "push_timeout_seconds": 5.0,
}


def with_paper(package: bytes, paper: int) -> bytes:
    """The sample's `Bussiness/Paper` set to `paper`."""
    assert package.count(b"<edXML:Paper>0</edXML:Paper>") == 1
    return package.replace(
        b"<edXML:Paper>0</edXML:Paper>", f"<edXML:Paper>{paper}</edXML:Paper>".encode()
    )


def around_today() -> dict[str, str]:
    """Yesterday to tomorrow in the node's zone: the traffic a test just made (and never
    split by local midnight)."""
    today = datetime.now(ZONE).date()
    return {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}


async def sent(client: VxpClient, sender: str, package: bytes, kind: str = "edoc") -> str:
    answer = await client.send_edoc(package, sender, messagetype=kind)
    assert answer["status"] == "OK", answer
    return str(answer["DocId"])


async def report_json(node: Node, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = await node.http.get(REPORT, params=params or around_today(), headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    result: dict[str, Any] = answer.json()
    return result


def by_code(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["code"]: a for a in report["agencies"]}


# -- the counting rules ------------------------------------------------------------------


async def test_counting_rules_documents_recipients_paper_levels_statuses(
    make_node: NodeFactory,
) -> None:
    node = await make_node(**FAST_PUSH)
    auditor = await add_operator(node, "audrey", "auditor")
    operator = await add_operator(node, "olga", "operator")
    await node.runtime.store.upsert_agencies(
        [
            AgencyRecord(AgencyCode(A), "Sở Thông tin và Truyền thông"),
            AgencyRecord(AgencyCode(B), "Ủy ban nhân dân tỉnh"),
        ]
    )
    a = await node.add_system("sys.a", A)
    b = await node.add_system("sys.b", B)
    c = await node.add_system("sys.c", C)
    d = await node.add_system("sys.d", D)

    empty = await report_json(node, auditor)
    assert empty["sent"] == {
        "total": 0,
        "electronic_only": 0,
        "with_paper": 0,
        "electronic_only_percent": 0.0,
        "with_paper_percent": 0.0,
    }
    assert empty["agencies"] == [] and [r["level"] for r in empty["by_level"]] == [1, 2, 3, 4]

    async with running(Receiver(always_fail=True)) as receiver:
        await add_system(node.runtime.store, "sys.e", [E], push_url=receiver.url)
        # One package to three recipients: one sent, three received.
        doc1 = with_paper(document(A, [B, C, D]), 0)
        await sent(a, A, doc1)
        # The same DocumentId again: refused as a duplicate, nothing created.
        again = await a.send_edoc(doc1, A)
        assert (again["status"], again["ErrorCode"]) == ("FAIL", "24")
        # Through REST, submitted twice with one Idempotency-Key: one package.
        doc2 = with_paper(document(A, [B]), 1)
        for expected in (201, 200):
            answer = await node.http.post(
                "/api/v1/packages",
                content=doc2,
                headers={
                    **node.rest_headers(a),
                    "Content-Type": "application/xml",
                    "Idempotency-Key": "q3-doc2",
                },
            )
            assert answer.status_code == expected, answer.text
        await sent(b, B, with_paper(document(B, [A, C]), 1))
        # A push that dies, then is replayed by an operator: the same delivery, once.
        doc4 = await sent(a, A, with_paper(document(A, [E]), 0))

        async def dead() -> bool:
            detail = await node.runtime.operators.message_detail(doc4)
            return detail.deliveries[0].state == "dead"

        await until(dead)
        receiver.always_fail = False
        for dry_run in (True, False):
            replay = await node.http.post(
                "/api/v1/operator/replay",
                json={"message_id": doc4, "reason": "endpoint repaired", "dry_run": dry_run},
                headers=operator,
            )
            assert replay.status_code == 200, replay.text

        async def delivered() -> bool:
            detail = await node.runtime.operators.message_detail(doc4)
            return detail.deliveries[0].state == "done"

        await until(delivered)
        assert len(receiver.accepted) == 1

    # A package whose delivery to C an operator cancels: sent once, received by D only.
    doc5 = await sent(a, A, document(A, [C, D]))
    to_c = next(
        d.delivery_id
        for d in (await node.runtime.operators.message_detail(doc5)).deliveries
        if d.to_code == C
    )
    cancel = await node.http.post(
        "/api/v1/operator/cancel",
        json={"delivery_ids": [to_c], "reason": "sent to C by mistake"},
        headers=operator,
    )
    assert cancel.status_code == 200 and len(cancel.json()["cancelled"]) == 1, cancel.text

    # Statuses: B five distinct codes (05 twice), C three, D one; a repeat is refused;
    # A's recall request (13) is not feedback.
    doc1_id = document_id_of(doc1)
    for client, agency, codes in (
        (b, B, ["01", "03", "04", "05", "05", "06"]),
        (c, C, ["01", "03", "04"]),
        (d, D, ["01"]),
    ):
        for code in codes:
            await sent(client, agency, status(agency, A, doc1_id, code), "status")
    repeat = await c.send_edoc(status(C, A, doc1_id, "01"), C, messagetype="status")
    assert (repeat["status"], repeat["ErrorCode"]) == ("FAIL", "24")
    await sent(a, A, status(A, D, doc1_id, "13"), "status")

    report = await report_json(node, auditor)
    assert report["period"]["from"] == around_today()["from"]
    assert report["period"]["to"] == around_today()["to"]
    assert report["sent"] == {
        "total": 5,
        "electronic_only": 3,
        "with_paper": 2,
        "electronic_only_percent": 60.0,
        "with_paper_percent": 40.0,
    }
    assert report["received"] == {
        "total": 8,
        "electronic_only": 5,
        "with_paper": 3,
        "electronic_only_percent": 62.5,
        "with_paper_percent": 37.5,
    }
    assert report["by_level"] == [
        {"level": 1, "sent": 1, "received": 2, "sent_with_paper": 1, "received_with_paper": 1},
        {"level": 2, "sent": 4, "received": 2, "sent_with_paper": 1, "received_with_paper": 1},
        {"level": 3, "sent": 0, "received": 2, "sent_with_paper": 0, "received_with_paper": 1},
        {"level": 4, "sent": 0, "received": 2, "sent_with_paper": 0, "received_with_paper": 0},
    ]
    assert report["via_peers"] == {"sent": 0, "received": 0}
    assert report["inside"] == {"sent": 5, "received": 8}
    assert report["status_feedback"] == {
        "agencies": 5,
        "five_or_more": 1,
        "three_to_four": 1,
        "fewer_than_three": 3,
        "five_or_more_percent": 20.0,
        "agencies_by_code": {"01": 3, "03": 2, "04": 2, "05": 1, "06": 1},
    }
    # The directory's order (reversed groups): the province, then each department's units.
    assert [
        (
            r["code"],
            r["name"],
            r["sent"],
            r["received"],
            r["sent_with_paper"],
            r["received_with_paper"],
            r["status_codes"],
        )
        for r in report["agencies"]
    ] == [
        (B, "Ủy ban nhân dân tỉnh", 1, 2, 1, 1, 5),
        (A, "Sở Thông tin và Truyền thông", 4, 1, 1, 1, 0),
        (C, None, 0, 2, 0, 1, 3),
        (D, None, 0, 2, 0, 0, 1),
        (E, None, 0, 1, 0, 0, 0),
    ]
    assert by_code(report)[B]["status_codes_sent"] == ["01", "03", "04", "05", "06"]
    assert by_code(report)[A]["level"] == 2

    # Nothing of this counts in another period.
    elsewhere = await report_json(node, auditor, year=2020, quarter=1)
    assert elsewhere["sent"]["total"] == 0 and elsewhere["agencies"] == []
    assert elsewhere["period"]["from"] == "2020-01-01" and elsewhere["period"]["to"] == "2020-03-31"


async def test_period_boundaries_are_local_midnights(node: Node) -> None:
    auditor = await add_operator(node, "audrey", "auditor")
    a = await node.add_system("sys.a", A)
    await node.add_system("sys.b", B)
    ids = [await sent(a, A, document(A, [B])) for _ in range(4)]
    # Local (UTC+7) 30 June 23:59:59.999999, 1 July 00:00, 30 September 23:59:59, 1 October.
    times = [
        datetime(2026, 6, 30, 16, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 6, 30, 17, 0, tzinfo=UTC),
        datetime(2026, 9, 30, 16, 59, 59, tzinfo=UTC),
        datetime(2026, 9, 30, 17, 0, tzinfo=UTC),
    ]
    store = node.runtime.store
    assert isinstance(store, SqlStore)
    async with store.transaction() as session:
        for message_id, at in zip(ids, times, strict=True):
            await session.execute(
                update(Message).where(Message.public_id == message_id).values(received_at=at)
            )

    async def totals(**params: Any) -> tuple[int, int]:
        report = await report_json(node, auditor, **params)
        return report["sent"]["total"], report["received"]["total"]

    assert await totals(year=2026, quarter=2) == (1, 1)
    assert await totals(year=2026, quarter=3) == (2, 2)
    assert await totals(year=2026, quarter=4) == (1, 1)
    assert await totals(**{"from": "2026-07-01", "to": "2026-07-01"}) == (1, 1)
    assert await totals(**{"from": "2026-06-15", "to": "2026-09-14"}) == (2, 2)
    # Titled as the quarter, over the province's own days.
    titled = await report_json(
        node, auditor, year=2026, quarter=3, **{"from": "2026-06-15", "to": "2026-09-30"}
    )
    assert titled["sent"]["total"] == 3
    assert titled["period"]["quarter"] == {"year": 2026, "quarter": 3}
    assert titled["period"]["title"]["en"] == "Q3 2026 (2026-06-15 to 2026-09-30)"
    # The same instants in another zone fall in other quarters.
    in_utc = await quarterly_report(
        node.runtime.reports, Period.of_quarter(2026, 3), timezone="UTC", node_code="x"
    )
    assert in_utc.sent.total == 2  # 30 Sept 16:59:59 and 17:00 UTC; 30 June 17:00 is Q2 there


# -- through peers -------------------------------------------------------------------------

P53_AGENCY, P53_OTHER = "000.00.01.H53", "000.00.02.H53"
MINISTRY = "000.00.00.G01"


async def test_through_peers_and_inside(federation: Federation) -> None:
    fast = {"push_retry_tiers_seconds": (0.2, 0.4), "push_max_attempts": 4}
    province = await federation.node("p53", "000.00.00.H53", **fast)
    national = await federation.node("national", "000.00.00.G22", **fast)
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    sender = await province.add_system("sys.p53", P53_AGENCY)
    local = await province.add_system("sys.p53.other", P53_OTHER)
    ministry = await national.add_system("sys.g01", MINISTRY)
    auditor = await add_operator(province, "audrey", "auditor")

    # Out: one package to a ministry behind the peer and a local agency; one inside only.
    outgoing = with_paper(document(P53_AGENCY, [MINISTRY, P53_OTHER]), 1)
    await sent(sender, P53_AGENCY, outgoing)
    await sent(sender, P53_AGENCY, document(P53_AGENCY, [P53_OTHER]))
    await poll_until(ministry, 1, timeout=30)
    # In: a ministry's package polled from the peer, to the province's agency.
    incoming = with_paper(document(MINISTRY, [P53_AGENCY]), 1)
    await sent(ministry, MINISTRY, incoming)
    [item] = await poll_until(sender, 1, timeout=30)
    assert item["from"] == MINISTRY
    # A status from the ministry comes back through the peer: not a local agency's feedback.
    await sent(
        ministry, MINISTRY, status(MINISTRY, P53_AGENCY, document_id_of(outgoing), "01"), "status"
    )
    await poll_until(sender, 1, messagetype="status", timeout=30)
    assert len(await poll_until(local, 2)) == 2

    report = await report_json(province, auditor)
    assert report["sent"]["total"] == 2 and report["sent"]["with_paper"] == 1
    # Received here: P53_OTHER twice (inside), P53_AGENCY once (through the peer); the
    # ministry's delivery was forwarded, not received.
    assert report["received"]["total"] == 3 and report["received"]["with_paper"] == 2
    assert report["via_peers"] == {"sent": 1, "received": 1}
    assert report["inside"] == {"sent": 1, "received": 2}
    assert set(by_code(report)) == {P53_AGENCY, P53_OTHER}
    assert by_code(report)[P53_AGENCY] | {"name": None} == {
        "code": P53_AGENCY,
        "name": None,
        "sent": 2,
        "received": 1,
        "sent_with_paper": 1,
        "received_with_paper": 1,
        "status_codes": 0,
        "level": 2,
        "sent_via_peers": 1,
        "received_via_peers": 1,
        "status_codes_sent": [],
    }
    assert report["status_feedback"]["agencies"] == 2
    assert report["status_feedback"]["agencies_by_code"] == {}

    # On the national node the province's node is a local system: the province's agency
    # and the ministry each sent one and received one there; the ministry's status is
    # feedback of a local agency.
    national_auditor = await add_operator(national, "nadia", "auditor")
    there = await report_json(national, national_auditor)
    assert (there["sent"]["total"], there["received"]["total"]) == (2, 2)
    assert there["via_peers"] == {"sent": 0, "received": 0}
    assert by_code(there)[MINISTRY]["status_codes_sent"] == ["01"]


# -- the operator API ------------------------------------------------------------------


async def test_api_roles_formats_and_refusals(node: Node) -> None:
    a = await node.add_system("sys.a", A)
    await node.add_system("sys.b", B)
    await sent(a, A, with_paper(document(A, [B]), 1))
    auditor = await add_operator(node, "audrey", "auditor")
    admin = await add_operator(node, "adele", "admin")

    assert (await node.http.get(REPORT, params=around_today())).status_code == 401
    system = await node.http.get(REPORT, params=around_today(), headers=node.rest_headers(a))
    assert system.status_code == 401
    for auth in (auditor, admin):
        assert (await report_json(node, auth))["sent"]["total"] == 1

    csv_answer = await node.http.get(
        REPORT, params={**around_today(), "format": "csv"}, headers=auditor
    )
    assert csv_answer.status_code == 200
    assert csv_answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv_answer.headers["content-disposition"].startswith(
        'attachment; filename="bao-cao-lien-thong-'
    )
    rows = list(csv.DictReader(io.StringIO(csv_answer.content.decode("utf-8-sig"))))
    assert [
        (r["row"], r["code"], r["sent"], r["received"]) for r in rows if r["row"] != "level"
    ] == [
        ("agency", B, "0", "1"),
        ("agency", A, "1", "0"),
        ("total", "", "1", "1"),
    ]

    html = await node.http.get(REPORT, params={**around_today(), "format": "html"}, headers=auditor)
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.text.count("<svg") == 4 and "<script" not in html.text

    xlsx = await node.http.get(REPORT, params={**around_today(), "format": "XLSX"}, headers=auditor)
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["Tổng hợp", "Cơ quan"]

    quarter = await node.http.get(
        REPORT, params={"year": 2026, "quarter": 3, "format": "csv"}, headers=auditor
    )
    assert 'filename="bao-cao-lien-thong-2026-Q3.csv"' in quarter.headers["content-disposition"]

    for params in (
        {},
        {"year": 2026},
        {"quarter": 3},
        {"year": 2026, "quarter": 5},
        {"year": 99999, "quarter": 1},
        {"from": "2026-07-01"},
        {"from": "2026-09-30", "to": "2026-07-01"},
        {"from": "1 July", "to": "2026-07-01"},
        {"year": 2026, "quarter": 3, "format": "pdf"},
    ):
        refused = await node.http.get(REPORT, params=params, headers=auditor)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")


# -- the CLI and the outputs ---------------------------------------------------------------


def on_node(backing: Backing, work: Callable[[Node], Awaitable[T]]) -> T:
    """Run `work` against a node of its own, outside the CLI's runs."""

    async def run_node() -> T:
        app = create_app(backing.settings())
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway.test"
            ) as http:
                broker = app.state.runtime.broker
                if isinstance(broker, RabbitMQBroker):
                    await broker.wait_connected(timeout=30)
                return await work(Node(backing, app, http))

    return asyncio.run(run_node())


def test_cli_writes_every_format(backing: Backing, tmp_path: Path) -> None:
    async def traffic(node: Node) -> None:
        await node.runtime.store.upsert_agencies([AgencyRecord(AgencyCode(A), "Sở Nội vụ")])
        a = await node.add_system("sys.a", A)
        b = await node.add_system("sys.b", B)
        package = with_paper(document(A, [B]), 1)
        await sent(a, A, package)
        await sent(a, A, document(A, [B]))
        await sent(b, B, status(B, A, document_id_of(package), "01"), "status")

    on_node(backing, traffic)
    period = around_today()
    args = ["report", "quarterly", "--from", period["from"], "--to", period["to"]]

    out = run(backing, *args)  # JSON on standard output by default
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["sent"]["total"] == 2 and report["sent"]["with_paper"] == 1
    assert report["received"]["total"] == 2
    assert by_code(report)[A]["name"] == "Sở Nội vụ"
    assert by_code(report)[B]["status_codes"] == 1

    written = {}
    for fmt in ReportFormat:
        target = tmp_path / f"report.{fmt.value}"
        result = run(backing, *args, "--format", fmt.value, "-o", str(target))
        assert result.exit_code == 0, result.output
        written[fmt] = target.read_bytes()
    assert json.loads(written[ReportFormat.JSON])["agencies"] == report["agencies"]
    rows = list(csv.DictReader(io.StringIO(written[ReportFormat.CSV].decode("utf-8-sig"))))
    total = rows[-1]
    assert (
        total["row"],
        total["sent"],
        total["sent_with_paper"],
        total["sent_with_paper_percent"],
    ) == ("total", "2", "1", "50.0")
    assert [r["level"] for r in rows if r["row"] == "level"] == ["1", "2", "3", "4"]
    html = written[ReportFormat.HTML].decode()
    assert "Sở Nội vụ" in html and "Văn bản gửi đi (Documents sent)" in html
    book = load_workbook(io.BytesIO(written[ReportFormat.XLSX]))
    agencies = book["Cơ quan"]
    assert [c.value for c in agencies[2]][:5] == [B, None, 1, 0, 0]
    assert [c.value for c in agencies[3]][:6] == [A, "Sở Nội vụ", 2, 2, 1, 1]
    assert agencies.cell(4, 2).value == "Tổng số"

    text = run(
        backing, "report", "quarterly", "--year", "2026", "--quarter", "3", "--format", "csv"
    )
    assert text.exit_code == 0 and text.output.startswith("\ufeffrow,code,name,level,sent,")
    assert run(backing, *args, "--format", "xlsx").exit_code == 2  # binary: needs -o
    assert run(backing, "report", "quarterly", "--year", "2026").exit_code == 1
    assert run(backing, "report", "quarterly", "--quarter", "5", "--year", "2026").exit_code == 2
    refused = run(backing, "report", "quarterly", "--from", "2026-09-01", "--to", "2026-08-01")
    assert refused.exit_code == 1 and "before it starts" in refused.output


# -- the model and its renderings, without a node ------------------------------------------


def test_period_parsing() -> None:
    assert Period.parse(2026, 4) == Period(date(2026, 10, 1), date(2026, 12, 31), (2026, 4))
    assert Period.parse(2024, 1).days == 91  # a leap year's February
    start, end = Period.parse(first="2026-07-01", last="2026-07-01").bounds("Asia/Ho_Chi_Minh")
    assert (start, end) == (
        datetime(2026, 6, 30, 17, tzinfo=UTC),
        datetime(2026, 7, 1, 17, tzinfo=UTC),
    )
    assert Period.parse(2026, 3).title() == ("Quý III năm 2026", "Q3 2026")
    assert Period.parse(2026, 3).slug() == "2026-Q3"
    for bad in (
        (2026, None, None, None),
        (None, None, "2026-01-01", None),
        (None, None, None, None),
    ):
        with pytest.raises(InvalidRequest):
            Period.parse(*bad)


def test_renderings_agree_and_print_without_the_network() -> None:
    rows = [
        AgencyTraffic(
            f"000.00.{i:02d}.H53",
            f"Đơn vị <{i}>",
            sent=i,
            sent_with_paper=i // 2,
            received=2 * i,
            status_codes=tuple(f"0{k}" for k in range(1, 1 + i % 7)),
        )
        for i in range(1, 41)
    ]
    report = QuarterlyReport.build(
        Period.of_quarter(2026, 3),
        rows,
        timezone="Asia/Ho_Chi_Minh",
        node_code="000.00.00.H53",
        generated_at=datetime(2026, 10, 1, tzinfo=UTC),
    )
    data = json.loads(render(report, ReportFormat.JSON))
    assert data["sent"]["total"] == sum(range(1, 41))
    assert data["status_feedback"]["agencies"] == 40
    html = render(report, ReportFormat.HTML, agency_rows=10).decode()
    assert "Đơn vị &lt;40&gt;" in html and "Đơn vị <40>" not in html  # escaped
    assert "Các cơ quan khác (30)" in html  # the rest in one row
    assert "<script" not in html and "src=" not in html and "@import" not in html
    assert "href=" not in html and "url(" not in html
    assert render(report, ReportFormat.HTML, agency_rows=0).decode().count("Đơn vị &lt;") == 40
    table = list(csv.reader(io.StringIO(render(report, ReportFormat.CSV).decode("utf-8-sig"))))
    assert len(table) == 1 + 40 + 4 + 1
