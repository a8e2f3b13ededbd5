"""The `lienthong` CLI that operators and tests use to manage a node."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.records import SystemCredentials
from gateway.runtime import build_store
from tests.support.cli import run
from tests.support.nodes import Backing


@pytest.fixture
def cli(backing: Backing) -> Backing:
    return backing


def credentials(backing: Backing, system_id: str) -> tuple[str, list[str]]:
    async def read() -> SystemCredentials | None:
        store = build_store(backing.settings())
        try:
            return await store.get_credentials(system_id)
        finally:
            await store.close()

    found = asyncio.run(read())
    assert found is not None
    return found.secret, [p.text for p in found.system.patterns]


def test_systems_add_prints_a_generated_secret_that_is_stored(cli: Backing) -> None:
    result = run(
        cli, "systems", "add", "00.53.W00", "--serves", "#.H53", "--serves", "000.00.13.H60"
    )
    assert result.exit_code == 0, result.output
    printed = result.output.strip()
    assert len(printed) >= 32
    assert credentials(cli, "00.53.W00") == (printed, ["#.H53", "000.00.13.H60"])
    listing = run(cli, "systems", "list")
    assert "00.53.W00" in listing.output and printed not in listing.output


def test_systems_add_with_a_given_secret_and_refusals(cli: Backing) -> None:
    assert (
        run(
            cli, "systems", "add", "sys.a", "--serves", "*.*.13.H53", "--secret", "s3cr3t-key"
        ).exit_code
        == 0
    )
    assert (credentials(cli, "sys.a"))[0] == "s3cr3t-key"
    again = run(cli, "systems", "add", "sys.a", "--serves", "000.00.01.H53")
    assert again.exit_code == 1 and "already exists" in again.output
    bad = run(cli, "systems", "add", "sys.b", "--serves", "H53.*")
    assert bad.exit_code == 1 and "'*' may only stand in leading groups" in bad.output
    short = run(cli, "systems", "add", "sys.c", "--serves", "#.H53", "--secret", "short")
    assert short.exit_code == 1 and "at least 8" in short.output


def test_agencies_import_csv_then_json_updates(cli: Backing, tmp_path: Path) -> None:
    csv_file = tmp_path / "agencies.csv"
    csv_file.write_text(
        "code,name,parent,mail,extra\n"
        "000.00.00.H53,UBND tỉnh Tây Ninh,,ubnd@tayninh.gov.vn,x\n"
        "000.00.13.H53,Sở Thông tin và Truyền thông,000.00.00.H53,,y\n",
        encoding="utf-8",
    )
    assert run(cli, "agencies", "import", str(csv_file)).output.strip() == "2 added, 0 updated"
    json_file = tmp_path / "agencies.json"
    json_file.write_text(
        json.dumps(
            [
                {
                    "code": "000.00.13.H53",
                    "name": "Sở Khoa học và Công nghệ",
                    "parent": "000.00.00.H53",
                },
                {"code": "000.00.14.H53", "name": "Sở Tư pháp"},
            ]
        ),
        encoding="utf-8",
    )
    assert run(cli, "agencies", "import", str(json_file)).output.strip() == "1 added, 1 updated"
    listing = run(cli, "agencies", "list").output
    assert "Sở Khoa học và Công nghệ" in listing and "Sở Thông tin" not in listing
    assert run(cli, "agencies", "add", "000.00.15.H53", "--name", "Sở Y tế").exit_code == 0
    assert "000.00.15.H53" in run(cli, "agencies", "list").output


def directory_versions(backing: Backing) -> dict[str, int]:
    async def read() -> dict[str, int]:
        store = build_store(backing.settings())
        try:
            return {unit.code: unit.version for unit in await store.directory_units()}
        finally:
            await store.close()

    return asyncio.run(read())


def test_agencies_cli_changes_take_directory_versions(cli: Backing, tmp_path: Path) -> None:
    csv_file = tmp_path / "agencies.csv"
    csv_file.write_text(
        "code,name,parent,mail\n000.00.00.H53,UBND tỉnh,,\n000.00.13.H53,Sở TTTT,000.00.00.H53,\n",
        encoding="utf-8",
    )
    assert run(cli, "agencies", "import", str(csv_file)).output.strip() == "2 added, 0 updated"
    assert directory_versions(cli) == {"000.00.00.H53": 1, "000.00.13.H53": 2}
    assert run(cli, "agencies", "import", str(csv_file)).output.strip() == "0 added, 0 updated"
    assert (
        run(cli, "agencies", "add", "000.00.00.H53", "--name", "UBND tỉnh").output.strip()
        == "000.00.00.H53 unchanged"
    )
    assert directory_versions(cli) == {"000.00.00.H53": 1, "000.00.13.H53": 2}
    assert (
        run(
            cli,
            "agencies",
            "add",
            "000.00.13.H53",
            "--name",
            "Sở KH&CN",
            "--parent",
            "000.00.00.H53",
        ).output.strip()
        == "000.00.13.H53 updated"
    )
    assert directory_versions(cli) == {"000.00.00.H53": 1, "000.00.13.H53": 3}


def test_agencies_import_reports_every_bad_row(cli: Backing, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,parent,mail\n000.00.00.H53,,,\nnot a code,X,,\n", "utf-8")
    result = run(cli, "agencies", "import", str(bad))
    assert result.exit_code == 1
    assert "line 2: name is required" in result.output
    assert "line 3: code 'not a code'" in result.output
    assert "0 added" not in run(cli, "agencies", "list").output


def test_migrate_is_idempotent(cli: Backing) -> None:
    result = run(cli, "migrate")
    assert result.exit_code == 0 and "latest schema" in result.output
