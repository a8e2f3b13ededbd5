"""The README's "First exchange" walkthrough, run as written: its first block starts the
node (`lienthong serve --demo`, here on a free port and the test's backend), its second block
is executed verbatim by bash in a directory laid out like the repository's root (`.venv`,
`examples`, and the node's `lienthong-data`), and what it leaves behind is checked. Also the
node's `/docs`, served offline: no URL outside the node, and every asset it names loads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from gateway.delivery_states import CAUGHT_UP, PUBLISHED_REASON
from tests.support.nodes import Backing
from tests.support.processes import GatewayProcess

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## First exchange"


def walkthrough() -> tuple[str, str]:
    """The two `sh` blocks of the README's "First exchange" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    blocks = re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.S)
    assert len(blocks) == 2, blocks
    return blocks[0].strip(), blocks[1]


class References(HTMLParser):
    """Every `src` and `href` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def check_docs_offline(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for page in ("/docs", "/redoc"):
            answer = client.get(page)
            assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
            assert not re.search(r"https?://", answer.text), answer.text  # nothing off the node
            parser = References()
            parser.feed(answer.text)
            assert parser.found, answer.text
            for reference in parser.found:
                assert reference.startswith("/"), reference
                asset = client.get(reference)
                assert asset.status_code == 200, reference
                assert len(asset.content) > 1000, reference
            assert "'/openapi.json'" in answer.text or '"/openapi.json"' in answer.text
        assert "cdn.jsdelivr" not in client.get("/docs/assets/swagger-ui-bundle.js").text
        assert client.get("/openapi.json").json()["components"]["securitySchemes"]


@pytest.fixture
def repository_like(tmp_path: Path, backing: Backing) -> Path:
    """A working directory laid out like the repository's root, the node's data in it."""
    where = tmp_path / "walk"
    where.mkdir()
    (where / ".venv").symlink_to(Path(sys.prefix))
    (where / "examples").symlink_to(ROOT / "examples")
    (where / "lienthong-data").symlink_to(backing.data_dir)
    return where


async def test_the_first_exchange_runs_as_the_readme_says(
    backing: Backing, repository_like: Path, tmp_path: Path
) -> None:
    serve, session = walkthrough()
    assert serve == ".venv/bin/lienthong serve --demo"
    node = GatewayProcess(backing.environment(), tmp_path / "serve.log", "--demo")
    try:
        await node.wait_ready()
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("LIENTHONG_", "DEMO_"))
        }
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", session],
            cwd=repository_like,
            env=environment,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        check_docs_offline(node.url)
    finally:
        node.stop()
    assert "Demo systems on " in (tmp_path / "serve.log").read_text()
    out = repository_like

    sent = json.loads((out / "sent.json").read_text())
    (recipient,) = sent["recipients"]
    assert recipient["code"] == "000.00.02.H99" and sent["duplicate"] is False
    received = (out / "received.edxml").read_bytes()
    letter = (ROOT / "examples/demo/letter.edxml").read_bytes()
    assert received.startswith(b"<?xml") and len(received) > len(letter)
    assert b"lienthong.local" in received and b"lienthong.local" not in letter
    assert "V/v thử nghiệm trao đổi văn bản điện tử" in done.stdout

    (delivery,) = json.loads((out / "timeline.json").read_text())
    assert delivery["delivery_id"] == recipient["delivery_id"] and delivery["state"] == "done"
    timeline = delivery["timeline"]
    assert [t["to_state"] for t in timeline] == [
        "accepted",
        "queued",
        "available",
        "downloaded",
        "done",
    ]
    assert timeline[1]["reason"] in (PUBLISHED_REASON, CAUGHT_UP)
    for entry in timeline:  # a normal path reads as one: every step says what happened
        assert entry["reason"], entry
        assert not re.search(r"fail|error|before the relay|refused|lost", entry["reason"]), entry

    for code in ("01", "03"):
        assert json.loads((out / f"status-{code}.json").read_text())["recipients"]
    assert '"code": "03"' in done.stdout  # the latest business status, seen by the sender
    statuses = json.loads((out / "statuses.json").read_text())["items"]
    assert [s["kind"] for s in statuses] == ["status", "status"]


async def test_docs_are_served_offline(backing: Backing, tmp_path: Path) -> None:
    node = GatewayProcess(backing.environment(), tmp_path / "serve.log")
    try:
        await node.wait_ready()
        check_docs_offline(node.url)
    finally:
        node.stop()


def test_the_demo_letter_builds_from_its_commented_description(tmp_path: Path) -> None:
    """`examples/demo/letter.yaml` works as written: `lienthong edxml build` makes exactly the
    committed `letter.edxml`, which `lienthong edxml validate` calls valid."""
    from click.testing import CliRunner

    from gateway.cli import main

    built = tmp_path / "letter.edxml"
    runner = CliRunner()
    result = runner.invoke(
        main, ["edxml", "build", str(ROOT / "examples/demo/letter.yaml"), "-o", str(built)]
    )
    assert result.exit_code == 0, result.output
    assert built.read_bytes() == (ROOT / "examples/demo/letter.edxml").read_bytes()
    checked = runner.invoke(main, ["edxml", "validate", str(built)])
    assert checked.exit_code == 0 and "VALID" in checked.output, checked.output
