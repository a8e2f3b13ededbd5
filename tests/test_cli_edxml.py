"""`lienthong edxml`: validate, show, build and status (gateway.cli_edxml)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.edxml.model import VIETNAM, DocumentPackage, StatusCode, StatusPackage
from gateway.edxml.parser import parse_package

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "vpcp-sdk"
EDOC_NEW = SAMPLES / "edoc_new.edxml"
EDOC_NEW_SUBJECT = "V/v kết nối, liên thông phần mềm quản lý văn bản"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["edxml", *map(str, args)], catch_exceptions=False)


def description(**changes: object) -> dict[str, object]:
    """A new-document description in alias form, one attachment read from `file:`."""
    data: dict[str, object] = {
        "header": {
            "From": {"OrganId": "000.00.01.H53", "OrganName": "UBND tỉnh Thừa Thiên Huế"},
            "To": [{"OrganId": "000.00.13.H53", "OrganName": "Sở Tài chính"},
                   {"OrganId": "000.00.14.H53"}],
            "DocumentId": "000.00.01.H53,2024/05/06,12/UBND-VP",
            "Code": {"CodeNumber": 12, "CodeNotation": "UBND-VP"},
            "PromulgationInfo": {"Place": "Huế", "PromulgationDate": "2024/05/06"},
            "DocumentType": {"Type": 1, "TypeName": "Công văn"},
            "Subject": "V/v báo cáo số liệu & kế hoạch <2024>",
            "OtherInfo": {"Priority": 1, "Direction": False},
        },
        "traces": [{"OrganId": "000.00.01.H53", "Timestamp": "2024/05/06 08:30:00"}],
        "references": [{"ContentId": "cid:1", "ContentType": "application/pdf",
                        "AttachmentName": "Báo cáo.pdf"}],
        "attachments": [{"ContentId": "cid:1", "ContentType": "application/pdf",
                         "AttachmentName": "Báo cáo.pdf", "file": "bao-cao.pdf"}],
    }
    data.update(changes)
    return data


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "bao-cao.pdf"
    path.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    return path


# -- registration and validate ---------------------------------------------------------------

def test_the_group_is_registered_on_lienthong() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("validate", "show", "build", "status"):
        assert command in result.output


def test_validate_accepts_a_sample_and_lists_its_warning() -> None:
    result = run("validate", EDOC_NEW)
    assert result.exit_code == 0, result.output
    assert "WARNING EDXML_CODE_NONSTANDARD MessageHeader/To[1]/OrganId" in result.output
    assert result.output.strip().splitlines()[-1].startswith("VALID")


def test_validate_refuses_the_sdk_sample_with_an_undeclared_prefix() -> None:
    result = run("validate", SAMPLES / "edoc.edxml")
    assert result.exit_code == 1
    assert "ERROR XML_UNBOUND_PREFIX" in result.output
    assert result.output.strip().splitlines()[-1].startswith("INVALID")


def test_validate_prints_every_problem(tmp_path: Path) -> None:
    broken = EDOC_NEW.read_bytes() \
        .replace(f"<edXML:Subject>{EDOC_NEW_SUBJECT}</edXML:Subject>".encode(),
                 b"<edXML:Subject></edXML:Subject>") \
        .replace(b"<edXML:PromulgationDate>2019/01/16<", b"<edXML:PromulgationDate>16/01/2019<")
    path = tmp_path / "broken.edxml"
    path.write_bytes(broken)
    result = run("validate", path)
    assert result.exit_code == 1
    assert "ERROR EDXML_REQUIRED MessageHeader/Subject:" in result.output
    assert "ERROR EDXML_VALUE MessageHeader/PromulgationInfo/PromulgationDate:" in result.output
    assert "2 problems" in result.output


def test_validate_lists_an_ignored_value_as_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "priority.edxml"
    path.write_bytes(EDOC_NEW.read_bytes().replace(b"<edXML:Priority>0<",
                                                   b"<edXML:Priority>9<"))
    result = run("validate", path)
    assert result.exit_code == 0, result.output
    assert "WARNING EDXML_VALUE_IGNORED MessageHeader/OtherInfo/Priority:" in result.output


def test_validate_strict_turns_length_warnings_into_errors(tmp_path: Path) -> None:
    long_subject = "Dài " * 200
    path = tmp_path / "long.edxml"
    path.write_bytes(EDOC_NEW.read_bytes().replace(EDOC_NEW_SUBJECT.encode(),
                                                   long_subject.encode()))
    relaxed = run("validate", path)
    assert relaxed.exit_code == 0 and "WARNING EDXML_TOO_LONG MessageHeader/Subject" in \
        relaxed.output
    strict = run("validate", path, "--strict")
    assert strict.exit_code == 1 and "ERROR EDXML_TOO_LONG MessageHeader/Subject" in \
        strict.output


# -- show ------------------------------------------------------------------------------------

def test_show_summarises_a_document() -> None:
    result = run("show", EDOC_NEW)
    assert result.exit_code == 0, result.output
    parsed = parse_package(EDOC_NEW)
    attachment = parsed.attachments[0]
    for expected in ("000.00.00.A80", "UBND xã Hòa Tiến", "28.22.H17", EDOC_NEW_SUBJECT,
                     "74fass22/VPCP-TTĐT", "1896_QD-TTg_m_294779.doc", "application/zip",
                     f"{attachment.size} bytes", attachment.sha256, "new document",
                     "Signed:", "EDXML_CODE_NONSTANDARD"):
        assert expected in result.output, expected


def test_show_describes_an_update_with_its_receiver_changes() -> None:
    result = run("show", SAMPLES / "edoc_update.edxml")
    assert result.exit_code == 0, result.output
    for expected in ("update", "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT",
                     "-000.00.00.H41 (removed)", "+000.00.00.H14 (added)"):
        assert expected in result.output, expected


def test_show_describes_a_status() -> None:
    result = run("show", SAMPLES / "status_acceptance_03.edxml")
    assert result.exit_code == 0, result.output
    assert "status 03" in result.output and "000.00.00.H41" in result.output
    assert "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT" in result.output


def test_show_refuses_a_broken_package() -> None:
    result = run("show", SAMPLES / "edoc.edxml")
    assert result.exit_code == 1 and "XML_UNBOUND_PREFIX" in result.output


# -- build -----------------------------------------------------------------------------------

def test_build_from_yaml_writes_a_valid_package(tmp_path: Path, pdf: Path) -> None:
    source = tmp_path / "van-ban.yaml"
    source.write_text(yaml.safe_dump(description(), allow_unicode=True), encoding="utf-8")
    out = tmp_path / "van-ban.edxml"
    result = run("build", source, "-o", out)
    assert result.exit_code == 0, result.output
    assert run("validate", out).exit_code == 0
    parsed = parse_package(out)
    assert isinstance(parsed.model, DocumentPackage)
    header = parsed.model.header
    assert header.subject == "V/v báo cáo số liệu & kế hoạch <2024>"
    assert header.code.code_number == "12"
    assert header.promulgation_info.promulgation_date == date(2024, 5, 6)
    assert parsed.model.traces[0].timestamp == datetime(2024, 5, 6, 8, 30, tzinfo=VIETNAM)
    assert parsed.attachments[0].sha256 == hashlib.sha256(pdf.read_bytes()).hexdigest()


def test_build_from_snake_case_json_to_stdout_with_attach(tmp_path: Path, pdf: Path) -> None:
    data = description()
    header = data.pop("header")
    assert isinstance(header, dict)
    snake_header = {"from_": header["From"], "to": header["To"],
                    "document_id": header["DocumentId"], "code": header["Code"],
                    "promulgation_info": header["PromulgationInfo"],
                    "document_type": header["DocumentType"], "subject": header["Subject"]}
    attachments = [{"content_id": "cid:1", "content_type": "application/pdf",
                    "attachment_name": "Báo cáo.pdf"}]
    source = tmp_path / "van-ban.json"
    source.write_text(json.dumps({"header": snake_header, "references": data["references"],
                                  "attachments": attachments}), encoding="utf-8")
    result = CliRunner().invoke(main, ["edxml", "build", str(source), "--attach",
                                       f"cid:1={pdf}"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    parsed = parse_package(result.stdout_bytes)
    assert isinstance(parsed.model, DocumentPackage)
    assert parsed.model.header.to[1].organ_id == "000.00.14.H53"
    assert parsed.attachments[0].size == pdf.stat().st_size


def test_build_reports_model_errors(tmp_path: Path, pdf: Path) -> None:
    data = description()
    header = data["header"]
    assert isinstance(header, dict)
    del header["Subject"]
    header["To"] = []
    source = tmp_path / "bad.yaml"
    source.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run("build", source, "-o", tmp_path / "bad.edxml")
    assert result.exit_code == 1
    assert "Subject" in result.output and "To" in result.output
    assert not (tmp_path / "bad.edxml").exists()


def test_build_reports_what_the_node_would_refuse(tmp_path: Path, pdf: Path) -> None:
    future = (datetime.now(VIETNAM).date() + timedelta(days=30)).strftime("%Y/%m/%d")
    data = description()
    header = data["header"]
    assert isinstance(header, dict)
    header["PromulgationInfo"] = {"PromulgationDate": future}
    source = tmp_path / "future.yaml"
    source.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run("build", source, "-o", tmp_path / "future.edxml")
    assert result.exit_code == 1
    assert "ERROR EDXML_FUTURE_DATE MessageHeader/PromulgationInfo/PromulgationDate" in \
        result.output


def test_build_needs_the_bytes_of_every_attachment(tmp_path: Path) -> None:
    data = description()
    attachments = data["attachments"]
    assert isinstance(attachments, list)
    del attachments[0]["file"]
    source = tmp_path / "missing.yaml"
    source.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run("build", source, "-o", tmp_path / "missing.edxml")
    assert result.exit_code == 1 and "cid:1" in result.output


# -- status ----------------------------------------------------------------------------------

def test_status_answers_a_document(tmp_path: Path) -> None:
    out = tmp_path / "status.edxml"
    before = datetime.now(VIETNAM).replace(microsecond=0)
    result = run("status", EDOC_NEW, "--from", "28.22.H17", "--code", "03",
                 "--description", "Đã tiếp nhận, vào sổ", "--staff", "Nguyễn Văn A", "-o", out)
    assert result.exit_code == 0, result.output
    parsed = parse_package(out)
    assert isinstance(parsed.model, StatusPackage)
    header = parsed.model.header
    assert header.status_code is StatusCode.ACCEPTED
    assert header.from_.organ_id == "28.22.H17"
    assert (header.response_for.organ_id, header.response_for.code,
            header.response_for.promulgation_date, header.response_for.document_id) == (
        "000.00.00.A80", "74fass22/VPCP-TTĐT", date(2019, 1, 16),
        "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT")
    assert header.description == "Đã tiếp nhận, vào sổ"
    assert header.staff_info is not None and header.staff_info.staff == "Nguyễn Văn A"
    assert header.timestamp is not None and before <= header.timestamp <= \
        datetime.now(VIETNAM) + timedelta(seconds=1)


def test_a_recall_request_names_the_recipient(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["edxml", "status", str(SAMPLES / "edoc_update.edxml"),
                                       "--from", "000.00.00.G22", "--code", "13",
                                       "--recipient", "000.00.00.H14"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    parsed = parse_package(result.stdout_bytes)
    assert isinstance(parsed.model, StatusPackage)
    assert parsed.model.header.response_for.organ_id == "000.00.00.H14"
    assert parsed.model.header.status_code is StatusCode.RECALL_REQUEST


def test_status_refuses_to_answer_a_status() -> None:
    result = run("status", SAMPLES / "status.edxml", "--from", "000.00.00.G22", "--code", "03")
    assert result.exit_code == 1 and "status package" in result.output
