"""Reading an agency directory file (CSV or JSON) for `lienthong agency import`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.errors import InvalidRequest
from gateway.records import AgencyRecord
from gateway.services.directory import agency_records, read_agency_file


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(InvalidRequest) as caught:
        read_agency_file(path)
    return caught.value.detail


def test_csv_with_bom_and_extra_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "agencies.csv",
        "code,name,parent,mail,status,successor,note\r\n"
        "000.00.00.H53,UBND Tỉnh Bến Tre,,ubnd@bentre.gov.vn,active,,x\r\n"
        "000.00.13.H53,Sở Nội vụ,000.00.00.H53,,merged,000.00.14.H53,\r\n"
        "vxp.saas.03,Hệ thống thử nghiệm,,,,,\r\n",
        encoding="utf-8-sig",
    )
    assert read_agency_file(path) == [
        AgencyRecord(code="000.00.00.H53", name="UBND Tỉnh Bến Tre", mail="ubnd@bentre.gov.vn"),
        AgencyRecord(
            code="000.00.13.H53",
            name="Sở Nội vụ",
            parent_code="000.00.00.H53",
            status="merged",
            successor_code="000.00.14.H53",
        ),
        AgencyRecord(code="vxp.saas.03", name="Hệ thống thử nghiệm"),
    ]


def test_json_list(tmp_path: Path) -> None:
    rows = [
        {"code": "000.00.00.H53", "name": "UBND", "mail": "a@b.vn", "oldCode": "H53"},
        {"code": "020100107370", "name": "Doanh nghiệp", "parent": None},
    ]
    path = write(tmp_path, "agencies.json", json.dumps(rows, ensure_ascii=False))
    assert read_agency_file(path) == [
        AgencyRecord(code="000.00.00.H53", name="UBND", mail="a@b.vn", old_code="H53"),
        AgencyRecord(code="020100107370", name="Doanh nghiệp"),
    ]


def test_every_bad_csv_row_is_reported_with_its_line(tmp_path: Path) -> None:
    detail = refusal(
        write(
            tmp_path,
            "agencies.csv",
            "code,name,parent,mail,status\n"
            "000.00.00.H53,Good,,,\n"
            "000.00.00.H5-3,Bad code,,,\n"
            "000.00.01.H53,,,,\n"
            "000.00.02.H53,Bad parent,H53 x,,\n"
            "000.00.03.H53,Bad status,,,closed\n"
            ",No code,,,\n",
        )
    )
    for expected in [
        "line 3: code '000.00.00.H5-3'",
        "line 4: name is required",
        "line 5: parent 'H53 x'",
        "line 6: status must be one of",
        "line 7: code None",
    ]:
        assert expected in detail
    assert "line 2" not in detail


def test_csv_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    detail = refusal(
        write(
            tmp_path,
            "agencies.csv",
            "code,name,parent,mail\n000.00.00.H53,Good,,\n\n000.00.13.H53,,,\n",
        )
    )
    assert detail.startswith("line 4: name is required"), detail


def test_every_bad_json_item_is_reported_with_its_index(tmp_path: Path) -> None:
    rows = [
        {"code": "000.00.00.H53", "name": "Good"},
        {"code": "bad code", "name": "x"},
        {"code": "000.00.01.H53"},
        {"code": "000.00.02.H53", "name": "  "},
        {"code": "000.00.03.H53", "name": "x", "status": "Active"},
    ]
    detail = refusal(write(tmp_path, "agencies.json", json.dumps(rows)))
    for expected in [
        "item 1: code 'bad code'",
        "item 2: name is required",
        "item 3: name is required",
        "item 4: status must be one of",
    ]:
        assert expected in detail
    assert "item 0" not in detail


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.csv", "id,title\n1,x\n", "header must include code,name"),
        ("a.json", '[{"code": ', "not JSON"),
        ("a.json", '{"code": "000.00.00.H53"}', "expected a JSON list of objects"),
        ("a.json", '["000.00.00.H53"]', "expected a JSON list of objects"),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, name: str, text: str, expected: str) -> None:
    assert expected in refusal(write(tmp_path, name, text))


def test_many_errors_are_summarised() -> None:
    rows = [(f"line {n}", {"code": "bad code", "name": "x"}) for n in range(2, 27)]
    with pytest.raises(InvalidRequest) as caught:
        agency_records(rows)
    assert "line 21:" in caught.value.detail and "line 22:" not in caught.value.detail
    assert caught.value.detail.endswith("(+5 more)")
