"""The operator console over plain HTTP (no browser), on both backends: sign-in and the
session cookie's flags, CSRF refusals, roles enforced as in the operator API, every act in
the audit trail, the figures of the overview, the search pages and both languages."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update

from adapters.db.models import Delivery
from adapters.db.store import SqlStore
from gateway.console import charts
from gateway.console.i18n import EN, VI
from gateway.console.pages import messages as messages_page
from gateway.console.session import COOKIE
from gateway.records import AgencyRecord
from gateway.types import AgencyCode
from tests.support.console import ConsoleClient, add_console_operator, csrf_of
from tests.support.exchange import send
from tests.support.nodes import Node, NodeFactory
from tests.support.operators import SETUP
from tests.support.polling import deliveries, settle, until

SENDER, R1, R2 = "000.00.01.H53", "000.00.02.H53", "000.00.04.H53"


@pytest.fixture
async def browsers(node: Node) -> AsyncIterator[list[ConsoleClient]]:
    """Browsers opened by a test (`open_browser`), closed after it."""
    opened: list[ConsoleClient] = []
    yield opened
    for browser in opened:
        await browser.close()


async def signed_in(
    node: Node, opened: list[ConsoleClient], name: str, role: str, base: str = "http://gateway.test"
) -> ConsoleClient:
    token = await add_console_operator(node.runtime.operators, name, role)
    browser = ConsoleClient.of(node.app, base)
    opened.append(browser)
    answer = await browser.sign_in(name, token)
    assert answer.status_code == 303, answer.text
    return browser


async def traffic(node: Node) -> tuple[str, dict[str, str]]:
    """A document from SENDER to R1 and R2, in both inboxes; its message id and deliveries."""
    sender = await node.add_system("sys.sender", SENDER)
    await node.add_system("sys.r1", R1)
    await node.add_system("sys.r2", R2)
    message = await send(sender, SENDER, [R1, R2])
    return message, await settle(node.runtime.store, message)


async def set_delivery(store: SqlStore, delivery_id: str, **values: object) -> None:
    """Test setup: a delivery as if it had got there (stuck, dead, forwarded)."""
    async with store.transaction() as session:
        await session.execute(
            update(Delivery).where(Delivery.public_id == delivery_id).values(**values)
        )


async def in_state(store: SqlStore, message: str, recipient: str, state: str) -> bool:
    return (await deliveries(store, message))[recipient][1] == state


async def actions(node: Node) -> list[tuple[str, str, str, bool]]:
    rows, _ = await node.runtime.operators.operator_actions(0, 500)
    return [(a.operator, a.action, a.target, a.dry_run) for a in rows]


def set_cookie_header(response: httpx.Response) -> str:
    [header] = [v for v in response.headers.get_list("set-cookie") if v.startswith(COOKIE + "=")]
    return header


# -- signing in --------------------------------------------------------------------------


async def test_sign_in_sets_a_strict_http_only_session_cookie(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    token = await add_console_operator(node.runtime.operators, "thu", "operator")
    browser = ConsoleClient.of(node.app)
    browsers.append(browser)
    first = await browser.get("/messages")
    assert first.status_code == 303
    assert first.headers["location"].startswith("/console/login?next=%2Fconsole%2Fmessages")

    refused = await browser.sign_in("thu", "not-the-token")
    assert refused.status_code == 401
    assert "Sai tên người vận hành hoặc mã truy cập." in refused.text
    assert f"{COOKIE}=" not in refused.headers.get("set-cookie", "")
    refused = await browser.sign_in("nobody", token)
    assert refused.status_code == 401

    form = await browser.get("/login", next="/console/messages")
    answer = await browser.post(
        "/login",
        {"csrf": csrf_of(form.text), "name": "thu", "token": token, "next": "/console/messages"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/messages"
    cookie = set_cookie_header(answer).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # plain http here; see the https test
    page = await browser.get("/messages")
    assert page.status_code == 200 and "thu" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in page.headers["content-security-policy"]  # none at all
    assert page.headers["x-frame-options"] == "DENY"
    assert ("thu", "console.sign-in", "operator thu", False) in await actions(node)

    # An outside address is never where a sign-in sends the browser.
    form = await browser.get("/login")
    away = await browser.post(
        "/login",
        {"csrf": csrf_of(form.text), "name": "thu", "token": token, "next": "//evil.example/"},
    )
    assert away.headers["location"] == "/console/"

    out = await browser.post("/logout", {"csrf": await browser.csrf()})
    assert out.status_code == 303
    assert (await browser.get("/messages")).status_code == 303


async def test_the_cookie_is_secure_over_https(node: Node, browsers: list[ConsoleClient]) -> None:
    token = await add_console_operator(node.runtime.operators, "thu", "admin")
    browser = ConsoleClient.of(node.app, "https://gateway.test")
    browsers.append(browser)
    answer = await browser.sign_in("thu", token)
    assert "secure" in set_cookie_header(answer).lower()
    assert (await browser.get("/")).status_code == 200


async def test_forged_expired_and_revoked_sessions_are_refused(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    browser = await signed_in(node, browsers, "thu", "operator")
    assert (await browser.get("/")).status_code == 200
    value = browser.http.cookies[COOKIE]
    payload, _, mac = value.partition(".")
    browser.http.cookies.set(COOKIE, payload + "." + mac[::-1], domain="gateway.test")
    assert (await browser.get("/")).status_code == 303
    browser.http.cookies.set(COOKIE, value, domain="gateway.test")
    assert (await browser.get("/")).status_code == 200

    # Disabling the operator ends its sessions at the next request.
    await node.runtime.operators.set_operator_enabled("thu", False, SETUP)
    assert (await browser.get("/")).status_code == 303


# -- CSRF --------------------------------------------------------------------------------


async def test_forms_without_the_sessions_token_or_from_another_site_are_refused(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    message, ids = await traffic(node)
    for delivery in ids.values():
        await set_delivery(node.runtime.store, delivery, state="dead")
    olga = await signed_in(node, browsers, "olga", "operator")
    other = await signed_in(node, browsers, "otto", "operator")
    token = await olga.csrf()
    form = {"message": message, "reason": "endpoint repaired"}

    for data, headers in (
        (form, {}),
        ({**form, "csrf": "0" * 64}, {}),
        ({**form, "csrf": await other.csrf()}, {}),
        ({**form, "csrf": token}, {"origin": "http://evil.example"}),
        ({**form, "csrf": token}, {"sec-fetch-site": "cross-site"}),
    ):
        refused = await olga.post("/replay", data, **headers)
        assert refused.status_code == 403, (data, headers, refused.text)
        assert "Biểu mẫu không hợp lệ" in refused.text
    assert [a for a in await actions(node) if a[1] == "replay"] == []

    # The sign-in form has its own token (a nonce cookie): a bare post is refused too.
    bare = ConsoleClient.of(node.app)
    browsers.append(bare)
    refused = await bare.post("/login", {"name": "olga", "token": "x"})
    assert refused.status_code == 403

    # The right token, same origin: the dry run.
    shown = await olga.post("/replay", {**form, "csrf": token}, origin="http://gateway.test")
    assert shown.status_code == 200, shown.text
    assert [a for a in await actions(node) if a[1] == "replay"] == [
        ("olga", "replay", f"message {message}", True)
    ]


# -- roles -------------------------------------------------------------------------------


async def test_an_auditor_reads_everything_and_changes_nothing(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    message, ids = await traffic(node)
    await set_delivery(node.runtime.store, ids[R1], state="dead")
    audrey = await signed_in(node, browsers, "audrey", "auditor")
    olga = await signed_in(node, browsers, "olga", "operator")
    for path in ("/", "/messages", f"/messages/{message}", "/stuck", "/directory", "/systems"):
        page = await audrey.get(path)
        assert page.status_code == 200, (path, page.text)
    shown = await audrey.get(f"/messages/{message}")
    assert 'action="/console/replay"' not in shown.text
    assert "Vai trò kiểm tra chỉ được xem" in shown.text
    systems = await audrey.get("/systems")
    assert "/rotate" not in systems.text and "Chỉ vai trò quản trị" in systems.text

    token = await audrey.csrf()
    for path, data in (
        ("/replay", {"message": message, "reason": "x"}),
        ("/replay/confirm", {"delivery": ids[R1], "reason": "x"}),
        ("/cancel", {"message": message, "reason": "x"}),
        ("/cancel/confirm", {"delivery": ids[R1], "reason": "x"}),
        ("/systems", {"system_id": "sys.new", "serves": "000.00.09.H53"}),
        ("/systems/sys.r1/disable", {}),
    ):
        refused = await audrey.post(path, {**data, "csrf": token})
        assert refused.status_code == 403, (path, refused.text)
        assert "Vai trò của bạn không được phép" in refused.text
    # Operators replay and cancel but do not manage systems, as in the operator API.
    refused = await olga.post("/systems/sys.r1/disable", {"csrf": await olga.csrf()})
    assert refused.status_code == 403
    assert await deliveries(node.runtime.store, message) == {
        R1: (ids[R1], "dead"),
        R2: (ids[R2], "available"),
    }
    assert (await node.runtime.store.get_system("sys.r1")).enabled  # type: ignore[union-attr]
    assert [a for a in await actions(node) if a[1] not in ("console.sign-in", "operator.add")] == []


# -- replay and cancel -------------------------------------------------------------------


async def test_replay_shows_the_dry_run_then_acts_on_exactly_that_list(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    store = node.runtime.store
    message, ids = await traffic(node)
    for delivery in ids.values():
        await set_delivery(store, delivery, state="dead")
    olga = await signed_in(node, browsers, "olga", "operator")
    token = await olga.csrf()

    preview = await olga.post(
        "/replay", {"state": "dead", "recipient": R2, "reason": "R2 is back", "csrf": token}
    )
    assert preview.status_code == 200, preview.text
    assert f'name="delivery" value="{ids[R2]}"' in preview.text
    assert ids[R1] not in preview.text
    assert await deliveries(store, message) == {R1: (ids[R1], "dead"), R2: (ids[R2], "dead")}

    # Confirmed: only the listed delivery, though R1 now matches a wider filter too.
    confirmed = await olga.post(
        "/replay/confirm", {"delivery": ids[R2], "reason": "R2 is back", "csrf": token}
    )
    assert confirmed.status_code == 303
    assert re.fullmatch(r"/console/audit/\d+", confirmed.headers["location"])
    await until(lambda: in_state(store, message, R2, "available"))
    assert await deliveries(store, message) == {
        R1: (ids[R1], "dead"),
        R2: (ids[R2], "available"),
    }
    record = await olga.get(confirmed.headers["location"].removeprefix("/console"))
    assert record.status_code == 200 and ids[R2] in record.text
    assert [a for a in await actions(node) if a[1] == "replay"] == [
        ("olga", "replay", f"filter states=['dead'],recipient={R2}", True),
        ("olga", "replay", f"deliveries {ids[R2]}", False),
    ]
    detail = await store.message_detail(message)
    [r2] = [d for d in detail.deliveries if d.to_code == R2]
    assert [(t.to_state, t.actor) for t in r2.timeline if t.from_state == "dead"] == [
        ("queued", "operator:olga")
    ]


async def test_cancel_with_a_reason_dry_run_first(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    store = node.runtime.store
    message, ids = await traffic(node)
    olga = await signed_in(node, browsers, "olga", "operator")
    token = await olga.csrf()
    missing = await olga.post("/cancel", {"message": message, "reason": " ", "csrf": token})
    assert missing.status_code == 400
    preview = await olga.post(
        "/cancel", {"delivery": ids[R1], "reason": "wrong agency", "csrf": token}
    )
    assert preview.status_code == 200 and "Xác nhận hủy" in preview.text
    assert (await deliveries(store, message))[R1] == (ids[R1], "available")
    done = await olga.post(
        "/cancel/confirm", {"delivery": ids[R1], "reason": "wrong agency", "csrf": token}
    )
    assert done.status_code == 303
    assert (await deliveries(store, message))[R1] == (ids[R1], "cancelled")
    assert [a[1:] for a in await actions(node) if a[1] == "cancel"] == [
        ("cancel", f"deliveries {ids[R1]}", True),
        ("cancel", f"deliveries {ids[R1]}", False),
    ]


# -- systems -----------------------------------------------------------------------------


async def test_systems_lifecycle_shows_a_secret_once_and_audits_every_change(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    thu = await signed_in(node, browsers, "thu", "admin")
    token = await thu.csrf()
    added = await thu.post(
        "/systems",
        {
            "system_id": "sys.new",
            "serves": "000.00.09.H53, #.H54",
            "push_url": "",
            "csrf": token,
        },
    )
    assert added.status_code == 200, added.text
    secret = re.search(r'<code id="secret">([^<]+)</code>', added.text)
    assert secret is not None
    assert added.headers["cache-control"] == "no-store"
    assert secret.group(1) not in (await thu.get("/systems")).text

    async def authenticates(secret: str) -> bool:
        answer = await node.http.get(
            "/api/v1/inbox", headers={"Authorization": f"Bearer sys.new:{secret}"}
        )
        return answer.status_code == 200

    assert await authenticates(secret.group(1))
    assert (await thu.post("/systems/sys.new/disable", {"csrf": token})).status_code == 303
    assert not await authenticates(secret.group(1))
    assert (await thu.post("/systems/sys.new/enable", {"csrf": token})).status_code == 303
    rotated = await thu.post("/systems/sys.new/rotate", {"csrf": token})
    new_secret = re.search(r'<code id="secret">([^<]+)</code>', rotated.text)
    assert new_secret is not None and new_secret.group(1) != secret.group(1)
    assert await authenticates(new_secret.group(1)) and not await authenticates(secret.group(1))
    wrong = await thu.post("/systems/sys.new/remove", {"confirm": "sys.other", "csrf": token})
    assert wrong.status_code == 400
    assert (
        await thu.post("/systems/sys.new/remove", {"confirm": "sys.new", "csrf": token})
    ).status_code == 303
    assert await node.runtime.store.get_system("sys.new") is None
    assert [a[1] for a in await actions(node) if a[2] == "system sys.new"] == [
        "system.add",
        "system.disable",
        "system.enable",
        "system.rotate-secret",
        "system.remove",
    ]

    pushed = await thu.post(
        "/systems",
        {
            "system_id": "sys.push",
            "serves": "000.00.08.H53",
            "push_url": "https://receiver.example/in",
            "csrf": token,
        },
    )
    assert pushed.status_code == 200
    assert "https://receiver.example/in" in (await thu.get("/systems")).text


# -- pages -------------------------------------------------------------------------------


async def test_message_search_by_filters_cursor_pages_and_a_forwarded_hop(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    store = node.runtime.store
    message, ids = await traffic(node)
    await set_delivery(
        store,
        ids[R2],
        state="forwarded",
        route="peer",
        peer="national",
        peer_doc_id="NAT-4711",
        downstream_state="done",
        downstream_at=datetime.now(UTC),
    )
    audrey = await signed_in(node, browsers, "audrey", "auditor")
    found = await audrey.get("/messages", recipient=R1, state="available")
    assert found.status_code == 200
    assert found.text.count(f"/console/messages/{message}") == 1
    assert (await audrey.get("/messages", recipient=R1, state="dead")).text.count(
        "/console/messages/"
    ) == 0
    bad = await audrey.get("/messages", since="not-a-day")
    assert bad.status_code == 400 and "not a day" in bad.text

    shown = await audrey.get(f"/messages/{message}")
    assert "NAT-4711" in shown.text and "national" in shown.text
    assert shown.text.count('class="card delivery"') == 2

    # Cursor pages: PAGE_SIZE rows, then a link to the next page.
    other = await node.add_system("sys.other", "000.00.03.H53")
    for _ in range(messages_page.PAGE_SIZE):
        await send(other, "000.00.03.H53", [R1])
    first = await audrey.get("/messages", recipient=R1)
    assert first.text.count("/console/messages/") == messages_page.PAGE_SIZE
    cursor = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert cursor is not None
    second = await audrey.get(cursor.group(1).replace("&amp;", "&").removeprefix("/console"))
    assert second.status_code == 200
    assert second.text.count("/console/messages/") == 1 and "Trang đầu" in second.text


async def test_message_search_only_stuck_ones_as_the_stuck_list_says(
    make_node: NodeFactory, browsers: list[ConsoleClient]
) -> None:
    node = await make_node(stuck_available_seconds=3600)
    message, ids = await traffic(node)
    await set_delivery(
        node.runtime.store, ids[R1], state_changed_at=datetime.now(UTC) - timedelta(days=2)
    )
    audrey = await signed_in(node, browsers, "audrey", "auditor")
    every = await audrey.get("/messages", state="available")
    stuck = await audrey.get("/messages", state="available", stuck="1")
    assert every.text.count('<td><a href="/console/messages/') == 2
    assert stuck.text.count('<td><a href="/console/messages/') == 1 and R1 in stuck.text
    assert 'name="stuck" value="1" checked' in stuck.text


async def test_stuck_list_and_its_csv(
    make_node: NodeFactory, browsers: list[ConsoleClient]
) -> None:
    node = await make_node(stuck_available_seconds=0.01)
    message, ids = await traffic(node)
    await set_delivery(
        node.runtime.store, ids[R1], state_changed_at=datetime.now(UTC) - timedelta(days=2)
    )
    audrey = await signed_in(node, browsers, "audrey", "auditor")
    page = await audrey.get("/stuck", state="available")
    assert page.status_code == 200 and R1 in page.text
    exported = await audrey.get("/stuck.csv", state="available")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text.removeprefix("\ufeff"))))
    assert {r["to_code"] for r in rows} == {R1, R2}
    [r1] = [r for r in rows if r["to_code"] == R1]
    assert r1["state"] == "available" and float(r1["age_hours"]) >= 47.9
    assert r1["message_id"] == message


async def test_directory_search_by_code_and_name(node: Node, browsers: list[ConsoleClient]) -> None:
    await node.runtime.store.upsert_agencies(
        [
            AgencyRecord(AgencyCode("000.00.13.H53"), "Sở Thông tin và Truyền thông"),
            AgencyRecord(AgencyCode("000.00.14.H53"), "Sở Tài chính"),
            AgencyRecord(AgencyCode("000.13.14.H53"), "Phòng Kế hoạch 100%_x"),
        ]
    )
    audrey = await signed_in(node, browsers, "audrey", "auditor")
    by_code = await audrey.get("/directory", q="000.00.13.H53")
    assert "Sở Thông tin và Truyền thông" in by_code.text and "Sở Tài chính" not in by_code.text
    by_name = await audrey.get("/directory", q="Tài chính")
    assert "000.00.14.H53" in by_name.text and "000.00.13.H53" not in by_name.text
    literal = await audrey.get("/directory", q="100%_")  # LIKE's wildcards are literal
    assert "000.13.14.H53" in literal.text and "000.00.14.H53" not in literal.text
    agencies, total = await node.runtime.console.search_agencies("14.H53", 50)
    assert [a.code for a in agencies] == ["000.00.14.H53", "000.13.14.H53"] and total == 3


async def test_overview_figures(node: Node, browsers: list[ConsoleClient]) -> None:
    message, ids = await traffic(node)
    await set_delivery(node.runtime.store, ids[R1], state="dead")
    audrey = await signed_in(node, browsers, "audrey", "auditor")
    page = await audrey.get("/")
    assert page.status_code == 200
    assert page.text.count("<svg") == 4
    states = {
        f.state: f
        for f in await node.runtime.console.state_figures(node.runtime.settings.stuck_thresholds)
    }
    assert states["dead"].count == 1 and states["dead"].stuck == 1
    assert states["available"].count == 1 and states["available"].stuck == 0
    zone = ZoneInfo(node.runtime.settings.timezone)
    today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    [day] = await node.runtime.console.traffic_by_day([today, today + timedelta(days=1)])
    assert (day.sent, day.received) == (1, 2)
    coverage = await node.runtime.console.feedback_coverage(datetime.now(UTC) - timedelta(days=1))
    assert (coverage.agencies, coverage.none) == (2, 2)


async def test_both_languages(node: Node, browsers: list[ConsoleClient]) -> None:
    assert VI.keys() == EN.keys()
    thu = await signed_in(node, browsers, "thu", "admin")
    for path in ("/", "/messages", "/stuck", "/directory", "/systems", "/peers", "/trust"):
        vi = await thu.get(path)
        en = await thu.get(path, lang="en")
        assert vi.status_code == en.status_code == 200, path
        assert '<html lang="vi">' in vi.text and '<html lang="en">' in en.text
        assert "Tổng quan" in vi.text and "Overview" in en.text
        assert 'href="/console/messages?lang=en"' in en.text  # links keep the language
    assert "Quarterly report" in (await thu.get("/reports", lang="en")).text


def test_charts_are_well_formed_svg() -> None:
    for svg in (
        charts.grouped_columns("a <b>", [("01/12", (3, 5)), ("02/12", (0, 0))], ("x", "y")),
        charts.horizontal_bars("c", [charts.Bar("dead", 2, "2 stuck", True), charts.Bar("q", 0)]),
        charts.horizontal_bars("empty", []),
        charts.shares("d", [("≥ 5", 1), ("none", 0)]),
        charts.shares("empty", [("a", 0)]),
    ):
        root = ElementTree.fromstring(str(svg))
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert " style=" not in str(svg)  # the Content-Security-Policy forbids inline style


async def test_the_quarterly_report_page_and_its_downloads(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    await traffic(node)
    audrey = await signed_in(node, browsers, "audrey", "auditor")  # every role reads it
    page = await audrey.get("/reports")
    assert page.status_code == 200, page.text
    summary = re.search(r'<table class="numbers" id="summary">.*?</table>', page.text, re.S)
    assert summary is not None
    cells = re.findall(r"<td>(\d+)</td>", summary.group(0))
    assert cells[:5] == ["1", "1", "0", "0", "1"]  # sent: total, electronic, paper, peers, inside
    assert cells[5:10] == ["2", "2", "0", "0", "2"]  # received: one per recipient
    assert page.text.count("<svg") == 2

    today = datetime.now(ZoneInfo(node.runtime.settings.timezone)).date()
    quarter = (today.month - 1) // 3 + 1
    params = {"year": str(today.year), "quarter": str(quarter)}
    figures = (await audrey.get("/reports/quarterly.json", **params)).json()
    assert figures["period"]["quarter"] == {"year": today.year, "quarter": quarter}
    assert (figures["sent"]["total"], figures["received"]["total"]) == (1, 2)
    printable = await audrey.get("/reports/quarterly.html", **params)
    assert printable.headers["content-type"].startswith("text/html")
    assert printable.headers["content-disposition"].startswith("inline")
    policy = printable.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in policy and "script" not in policy
    assert printable.headers.get_list("content-security-policy") == [policy]
    for fmt, kind in (("csv", "text/csv"), ("xlsx", "application/vnd.openxmlformats")):
        download = await audrey.get(f"/reports/quarterly.{fmt}", **params)
        assert download.headers["content-type"].startswith(kind)
        assert download.headers["content-disposition"].startswith("attachment")

    days = await audrey.get("/reports", **{"from": "2026-06-15", "to": "2026-09-14"})
    assert days.status_code == 200 and "15/06/2026" in days.text
    wrong = await audrey.get("/reports", **{"from": "2026-09-14", "to": "2026-06-15"})
    assert wrong.status_code == 400 and "before it starts" in wrong.text


async def test_operators_merge_rename_and_retire_agencies(
    node: Node, browsers: list[ConsoleClient]
) -> None:
    old, new, gone = "000.00.21.H53", "000.00.22.H53", "000.00.23.H53"
    await node.add_system("sys.dept", "#.H53")
    await node.runtime.store.upsert_agencies(
        [
            AgencyRecord(AgencyCode(old), "Sở Kế hoạch và Đầu tư"),
            AgencyRecord(AgencyCode(new), "Sở Tài chính"),
            AgencyRecord(AgencyCode(gone), "Ban quản lý dự án"),
            AgencyRecord(AgencyCode("001.21.H53"), "Phòng Đăng ký kinh doanh", parent_code=old),
        ]
    )
    audrey = await signed_in(node, browsers, "audrey", "auditor")
    olga = await signed_in(node, browsers, "olga", "operator")
    page = await audrey.get(f"/directory/{old}")
    assert page.status_code == 200 and "Phòng Đăng ký kinh doanh" in page.text
    assert "/merge" not in page.text
    refused = await audrey.post(
        f"/directory/{old}/rename", {"name": "x", "csrf": await audrey.csrf()}
    )
    assert refused.status_code == 403
    assert (await olga.get("/directory/000.00.99.H53")).status_code == 404

    token = await olga.csrf()
    renamed = await olga.post(
        f"/directory/{new}/rename", {"name": "Sở Tài chính tỉnh", "csrf": token}
    )
    assert renamed.status_code == 303
    assert "Sở Tài chính tỉnh" in (await olga.get(f"/directory/{new}")).text
    merged = await olga.post(f"/directory/{old}/merge", {"into": new, "csrf": token})
    assert merged.status_code == 303
    assert (await node.runtime.store.current_codes([old]))[old] == new
    wrong = await olga.post(f"/directory/{gone}/retire", {"confirm": old, "csrf": token})
    assert wrong.status_code == 400
    retired = await olga.post(f"/directory/{gone}/retire", {"confirm": gone, "csrf": token})
    assert retired.status_code == 303
    assert gone in await node.runtime.store.closed_agencies([gone])
    assert [
        a[1:3] for a in await actions(node) if a[0] == "olga" and a[1] != "console.sign-in"
    ] == [
        ("agency.rename", f"agency {new}"),
        ("agency.merge", f"agency {old}"),
        ("agency.retire", f"agency {gone}"),
    ]
