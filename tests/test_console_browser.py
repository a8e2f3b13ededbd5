"""The operator console in a real headless browser (Debian's chromium through Playwright)
against a real `lienthong serve` process, on both backends: sign-in, every page in both
languages, a message search and its timeline (a forwarded hop included), a replay shown as
a dry run then confirmed, an auditor refused. Every page is checked for console errors and
failed requests; screenshots are kept (`tests/support/browser.py` says where)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy import update

from adapters.db.models import Delivery
from adapters.db.store import SqlStore
from adapters.vxp_client import VxpClient
from gateway.records import AgencyRecord
from gateway.runtime import build_store
from gateway.services.directory import add_system
from gateway.types import AgencyCode
from tests.support.browser import PageWatch, Screenshots, artifacts_dir, launch
from tests.support.console import add_console_operator
from tests.support.nodes import Backing
from tests.support.polling import until
from tests.support.processes import GatewayProcess
from tests.support.samples import document
from tests.support.served import errors_in

SENDER, R1, R2, FAR = "000.00.01.H53", "000.00.02.H53", "000.00.04.H53", "000.00.07.H54"
PAGES = ("/", "/messages", "/stuck", "/directory", "/systems", "/peers", "/trust", "/reports")


@dataclass
class Served:
    process: GatewayProcess
    store: SqlStore
    tokens: dict[str, str]
    message: str
    ids: dict[str, str]
    """recipient → delivery id of `message` (R2's is dead)."""
    forwarded: str
    """A message whose delivery went on to a peer node."""

    @property
    def url(self) -> str:
        return self.process.url


async def states(store: SqlStore, message: str) -> dict[str, str]:
    return {d.to_code: d.state for d in (await store.message_detail(message)).deliveries}


async def mark(store: SqlStore, delivery_id: str, **values: object) -> None:
    async with store.transaction() as session:
        await session.execute(
            update(Delivery).where(Delivery.public_id == delivery_id).values(**values)
        )


@pytest.fixture
async def served(backing: Backing) -> AsyncIterator[Served]:
    """Systems, operators and agencies in the database, then the process, then two
    documents: one to R1 and R2 (R2's delivery made dead), one forwarded on to a peer."""
    store = build_store(backing.settings())
    secret = await add_system(store, "sys.sender", [SENDER])
    for system, code in (("sys.r1", R1), ("sys.r2", R2), ("sys.far", FAR)):
        await add_system(store, system, [code])
    tokens = {
        name: await add_console_operator(store, name, role)
        for name, role in (("thu", "admin"), ("olga", "operator"), ("audrey", "auditor"))
    }
    await store.upsert_agencies(
        [
            AgencyRecord(AgencyCode(SENDER), "Văn phòng UBND tỉnh"),
            AgencyRecord(AgencyCode(R1), "Sở Tài chính"),
            AgencyRecord(AgencyCode(R2), "Sở Thông tin và Truyền thông"),
        ]
    )
    process = GatewayProcess(backing.environment(), backing.data_dir / "gateway.log")
    try:
        await process.wait_ready()
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
            sender = VxpClient(http, "sys.sender", secret)
            sent = []
            for recipients in ([R1, R2], [FAR]):
                answer = await sender.send_edoc(document(SENDER, recipients), SENDER)
                assert answer["status"] == "OK", answer
                sent.append(str(answer["DocId"]))
        message, forwarded = sent
        for each in sent:
            await until(partial(_all_available, store, each))
        detail = await store.message_detail(message)
        ids = {d.to_code: d.delivery_id for d in detail.deliveries}
        await mark(store, ids[R2], state="dead", available_at=None)
        [far] = (await store.message_detail(forwarded)).deliveries
        await mark(
            store,
            far.delivery_id,
            state="forwarded",
            route="peer",
            peer="national",
            peer_doc_id="NAT-2026-0042",
            downstream_state="done",
            downstream_at=datetime.now(UTC),
        )
        yield Served(process, store, tokens, message, ids, forwarded)
    finally:
        process.stop()
        await store.close()
    # An exception behind any page would be an ERROR line (and a 500 the watch also sees).
    assert errors_in(process.log_path.read_text()) == []


async def _all_available(store: SqlStore, message: str) -> bool:
    return set((await states(store, message)).values()) == {"available"}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await launch(playwright)
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def screenshots(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Screenshots:
    taken = Screenshots(artifacts_dir(tmp_path_factory.getbasetemp()))

    def report() -> None:
        plugins = request.config.pluginmanager
        reporter, capture = (
            plugins.get_plugin("terminalreporter"),
            plugins.get_plugin("capturemanager"),
        )
        if reporter is None or capture is None or not taken.taken:
            return
        with capture.global_and_fixture_disabled():  # shown whether or not tests passed
            reporter.write_line(
                f"\nconsole screenshots ({len(taken.taken)}): {taken.directory}", bold=True
            )

    request.addfinalizer(report)
    return taken


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[tuple[Page, PageWatch]]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    watch = PageWatch()
    watch.attach(opened)
    yield opened, watch
    await context.close()


async def sign_in(page: Page, served: Served, name: str) -> None:
    await page.goto(f"{served.url}/console/")
    await expect(page).to_have_url(re.compile(r"/console/login\?"))
    await page.get_by_label("Tên người vận hành").fill(name)
    await page.get_by_label("Mã truy cập (token)").fill(served.tokens[name])
    await page.get_by_role("button", name="Đăng nhập").click()
    await expect(page).to_have_url(f"{served.url}/console/")
    await expect(page.locator("header .who strong")).to_have_text(name)


async def test_sign_in_and_every_page_in_both_languages(
    served: Served, page: tuple[Page, PageWatch], screenshots: Screenshots, backend: str
) -> None:
    browser_page, watch = page
    await browser_page.goto(f"{served.url}/console/login")
    await screenshots.take(browser_page, f"{backend}-vi-signin")
    await sign_in(browser_page, served, "thu")
    await expect(browser_page.locator("svg.chart")).to_have_count(4)
    await expect(browser_page.locator("h1")).to_have_text("Tổng quan")

    await browser_page.locator("header a.lang").click()
    await expect(browser_page.locator("h1")).to_have_text("Overview")
    await expect(browser_page.locator("html")).to_have_attribute("lang", "en")

    for lang, prefix in (("vi", ""), ("en", "?lang=en")):
        for path in PAGES:
            await browser_page.goto(f"{served.url}/console{path}{prefix}")
            await expect(browser_page.locator("html")).to_have_attribute("lang", lang)
            name = path.strip("/") or "overview"
            await screenshots.take(browser_page, f"{backend}-{lang}-{name}")
    await browser_page.goto(f"{served.url}/console/reports?lang=en")
    await expect(browser_page.locator("#report-title")).to_contain_text("Period: Q")
    await expect(browser_page.locator("#summary tbody tr").first).to_contain_text("1")
    await browser_page.get_by_role("link", name="Printable (HTML)").click()
    await expect(browser_page.locator("h1")).to_contain_text("BÁO CÁO", ignore_case=True)
    await screenshots.take(browser_page, f"{backend}-report-printable")

    # The overview prints: the charts are inline SVG, nothing is fetched for them.
    await browser_page.goto(f"{served.url}/console/")
    await browser_page.emulate_media(media="print")
    await expect(browser_page.locator("header nav")).to_be_hidden()
    await expect(browser_page.locator("svg.chart").first).to_be_visible()
    await screenshots.take(browser_page, f"{backend}-vi-overview-print")
    watch.check()


async def test_search_timeline_and_a_replay_dry_run_then_confirm(
    served: Served, page: tuple[Page, PageWatch], screenshots: Screenshots, backend: str
) -> None:
    browser_page, watch = page
    await sign_in(browser_page, served, "olga")
    await browser_page.get_by_role("link", name="Văn bản", exact=True).click()
    search = browser_page.locator("form.search")
    await search.locator('input[name="state"][value="dead"]').check()
    await search.get_by_label("Đơn vị nhận (mã)").fill(R2)
    await search.get_by_role("button", name="Tìm").click()
    rows = browser_page.locator("#results tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(R2)
    await screenshots.take(browser_page, f"{backend}-vi-messages-search")

    await rows.first.get_by_role("link").click()
    await expect(browser_page).to_have_url(re.compile(f"/console/messages/{served.message}$"))
    await expect(browser_page.locator("section.delivery")).to_have_count(2)
    await expect(
        browser_page.locator(f"#delivery-{served.ids[R1]} table.timeline")
    ).to_contain_text("system:sys.sender")
    await screenshots.take(browser_page, f"{backend}-vi-message-timeline")

    await browser_page.locator(f'#delivery-{served.ids[R2]} input[name="delivery"]').check()
    await browser_page.get_by_label("Lý do").fill("hệ thống của Sở đã hoạt động lại")
    await browser_page.get_by_role("button", name="Gửi lại (xem trước)").click()
    await expect(browser_page.locator("h1")).to_have_text("Gửi lại — xem trước")
    confirm = browser_page.locator("#confirm")
    await expect(confirm.locator("tbody tr")).to_have_count(1)
    await expect(confirm).to_contain_text(served.ids[R2])
    assert (await states(served.store, served.message))[R2] == "dead"  # a dry run
    await screenshots.take(browser_page, f"{backend}-vi-replay-dry-run")

    await confirm.get_by_role("button", name="Xác nhận gửi lại").click()
    await expect(browser_page).to_have_url(re.compile(r"/console/audit/\d+$"))
    await expect(browser_page.locator("#action-name")).to_have_text("replay")
    await expect(browser_page.locator("#acted")).to_contain_text(served.ids[R2])
    await screenshots.take(browser_page, f"{backend}-vi-replay-done")
    await until(partial(_available, served, R2))

    await browser_page.goto(f"{served.url}/console/messages/{served.forwarded}?lang=en")
    hop = browser_page.locator("tr.hop")
    await expect(hop).to_contain_text("national")
    await expect(hop).to_contain_text("NAT-2026-0042")
    await screenshots.take(browser_page, f"{backend}-en-message-forwarded")

    await browser_page.goto(f"{served.url}/console/audit")
    replays = browser_page.locator("#audit tbody tr", has_text="replay")
    await expect(replays).to_have_count(2)  # the dry run and the confirmed one
    watch.check()


async def _available(served: Served, recipient: str) -> bool:
    return (await states(served.store, served.message))[recipient] == "available"


async def test_an_auditor_sees_but_is_refused_a_replay(
    served: Served, page: tuple[Page, PageWatch], screenshots: Screenshots, backend: str
) -> None:
    browser_page, watch = page
    await sign_in(browser_page, served, "audrey")
    await browser_page.goto(f"{served.url}/console/messages/{served.message}")
    await expect(browser_page.locator("section.delivery")).to_have_count(2)
    await expect(browser_page.get_by_role("button", name="Gửi lại (xem trước)")).to_have_count(0)
    await expect(browser_page.locator("p.notice")).to_contain_text("chỉ được xem")
    await screenshots.take(browser_page, f"{backend}-vi-auditor-message")

    # A replay form the page never offered (an old tab, a crafted page) is refused.
    watch.expected_statuses.add(403)
    csrf = await browser_page.locator('header input[name="csrf"]').get_attribute("value")
    await browser_page.evaluate(
        """([csrf, message]) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = '/console/replay';
            for (const [name, value] of [['csrf', csrf], ['message', message], ['reason', 'x']]) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = name; input.value = value;
                form.append(input);
            }
            document.body.append(form);
            form.submit();
        }""",
        [csrf, served.message],
    )
    await expect(browser_page.locator("p.problem")).to_contain_text(
        "Vai trò của bạn không được phép"
    )
    await screenshots.take(browser_page, f"{backend}-vi-auditor-refused")
    assert (await states(served.store, served.message))[R2] == "dead"
    actions, _ = await served.store.operator_actions(0, 100)
    assert [a.action for a in actions if a.operator == "audrey"] == ["console.sign-in"]
    watch.check()
