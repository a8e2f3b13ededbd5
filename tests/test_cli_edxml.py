"""`lienthong edxml`: validate, show, build and status (gateway.cli_edxml)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from adapters.signatures.xmldsig import sign_package
from gateway.cli import main
from gateway.edxml.model import VIETNAM, DocumentPackage, StatusCode, StatusPackage
from gateway.edxml.parser import parse_package
from tests.support.pki import intermediate, root_authority
from tests.support.samples import SAMPLES, document

EDOC_NEW = SAMPLES / "edoc_new.edxml"
EDOC_NEW_SUBJECT = "V/v kết nối, liên thông phần mềm quản lý văn bản"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["edxml", *map(str, args)], catch_exceptions=False)


def description(**changes: object) -> dict[str, object]:
    """A new-document description in alias form, one attachment read from `file:`."""
    data: dict[str, object] = {
        "header": {
            "From": {"OrganId": "000.00.01.H53", "OrganName": "UBND tỉnh Thừa Thiên Huế"},
            "To": [
                {"OrganId": "000.00.13.H53", "OrganName": "Sở Tài chính"},
                {"OrganId": "000.00.14.H53"},
            ],
            "DocumentId": "000.00.01.H53,2024/05/06,12/UBND-VP",
            "Code": {"CodeNumber": 12, "CodeNotation": "UBND-VP"},
            "PromulgationInfo": {"Place": "Huế", "PromulgationDate": "2024/05/06"},
            "DocumentType": {"Type": 1, "TypeName": "Công văn"},
            "Subject": "V/v báo cáo số liệu & kế hoạch <2024>",
            "OtherInfo": {"Priority": 1, "Direction": False},
        },
        "traces": [{"OrganId": "000.00.01.H53", "Timestamp": "2024/05/06 08:30:00"}],
        "references": [
            {
                "ContentId": "cid:1",
                "ContentType": "application/pdf",
                "AttachmentName": "Báo cáo.pdf",
            }
        ],
        "attachments": [
            {
                "ContentId": "cid:1",
                "ContentType": "application/pdf",
                "AttachmentName": "Báo cáo.pdf",
                "file": "bao-cao.pdf",
            }
        ],
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
    broken = (
        EDOC_NEW.read_bytes()
        .replace(
            f"<edXML:Subject>{EDOC_NEW_SUBJECT}</edXML:Subject>".encode(),
            b"<edXML:Subject></edXML:Subject>",
        )
        .replace(b"<edXML:PromulgationDate>2019/01/16<", b"<edXML:PromulgationDate>16/01/2019<")
    )
    path = tmp_path / "broken.edxml"
    path.write_bytes(broken)
    result = run("validate", path)
    assert result.exit_code == 1
    assert "ERROR EDXML_REQUIRED MessageHeader/Subject:" in result.output
    assert "ERROR EDXML_VALUE MessageHeader/PromulgationInfo/PromulgationDate:" in result.output
    assert "2 problems" in result.output


def test_validate_lists_an_ignored_value_as_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "priority.edxml"
    path.write_bytes(EDOC_NEW.read_bytes().replace(b"<edXML:Priority>0<", b"<edXML:Priority>9<"))
    result = run("validate", path)
    assert result.exit_code == 0, result.output
    assert "WARNING EDXML_VALUE_IGNORED MessageHeader/OtherInfo/Priority:" in result.output


def test_validate_strict_turns_length_warnings_into_errors(tmp_path: Path) -> None:
    long_subject = "Dài " * 200
    path = tmp_path / "long.edxml"
    path.write_bytes(
        EDOC_NEW.read_bytes().replace(EDOC_NEW_SUBJECT.encode(), long_subject.encode())
    )
    relaxed = run("validate", path)
    assert (
        relaxed.exit_code == 0 and "WARNING EDXML_TOO_LONG MessageHeader/Subject" in relaxed.output
    )
    strict = run("validate", path, "--strict")
    assert strict.exit_code == 1 and "ERROR EDXML_TOO_LONG MessageHeader/Subject" in strict.output


# -- show ------------------------------------------------------------------------------------


def test_show_summarises_a_document() -> None:
    result = run("show", EDOC_NEW)
    assert result.exit_code == 0, result.output
    parsed = parse_package(EDOC_NEW)
    attachment = parsed.attachments[0]
    for expected in (
        "000.00.00.A80",
        "UBND xã Hòa Tiến",
        "28.22.H17",
        EDOC_NEW_SUBJECT,
        "74fass22/VPCP-TTĐT",
        "1896_QD-TTg_m_294779.doc",
        "application/zip",
        f"{attachment.size} bytes",
        attachment.sha256,
        "new document",
        "Signed:",
        "EDXML_CODE_NONSTANDARD",
    ):
        assert expected in result.output, expected


def test_show_describes_an_update_with_its_receiver_changes() -> None:
    result = run("show", SAMPLES / "edoc_update.edxml")
    assert result.exit_code == 0, result.output
    for expected in (
        "update",
        "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT",
        "-000.00.00.H41 (removed)",
        "+000.00.00.H14 (added)",
    ):
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
    snake_header = {
        "from_": header["From"],
        "to": header["To"],
        "document_id": header["DocumentId"],
        "code": header["Code"],
        "promulgation_info": header["PromulgationInfo"],
        "document_type": header["DocumentType"],
        "subject": header["Subject"],
    }
    attachments = [
        {"content_id": "cid:1", "content_type": "application/pdf", "attachment_name": "Báo cáo.pdf"}
    ]
    source = tmp_path / "van-ban.json"
    source.write_text(
        json.dumps(
            {"header": snake_header, "references": data["references"], "attachments": attachments}
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["edxml", "build", str(source), "--attach", f"cid:1={pdf}"], catch_exceptions=False
    )
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
    assert (
        "ERROR EDXML_FUTURE_DATE MessageHeader/PromulgationInfo/PromulgationDate" in result.output
    )


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
    result = run(
        "status",
        EDOC_NEW,
        "--from",
        "28.22.H17",
        "--code",
        "03",
        "--description",
        "Đã tiếp nhận, vào sổ",
        "--staff",
        "Nguyễn Văn A",
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    parsed = parse_package(out)
    assert isinstance(parsed.model, StatusPackage)
    header = parsed.model.header
    assert header.status_code is StatusCode.ACCEPTED
    assert header.from_.organ_id == "28.22.H17"
    assert (
        header.response_for.organ_id,
        header.response_for.code,
        header.response_for.promulgation_date,
        header.response_for.document_id,
    ) == (
        "000.00.00.A80",
        "74fass22/VPCP-TTĐT",
        date(2019, 1, 16),
        "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT",
    )
    assert header.description == "Đã tiếp nhận, vào sổ"
    assert header.staff_info is not None and header.staff_info.staff == "Nguyễn Văn A"
    assert header.timestamp is not None and before <= header.timestamp <= datetime.now(
        VIETNAM
    ) + timedelta(seconds=1)


def test_a_recall_request_names_the_recipient(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "edxml",
            "status",
            str(SAMPLES / "edoc_update.edxml"),
            "--from",
            "000.00.00.G22",
            "--code",
            "13",
            "--recipient",
            "000.00.00.H14",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    parsed = parse_package(result.stdout_bytes)
    assert isinstance(parsed.model, StatusPackage)
    assert parsed.model.header.response_for.organ_id == "000.00.00.H14"
    assert parsed.model.header.status_code is StatusCode.RECALL_REQUEST


def test_status_refuses_to_answer_a_status() -> None:
    result = run("status", SAMPLES / "status.edxml", "--from", "000.00.00.G22", "--code", "03")
    assert result.exit_code == 1 and "status package" in result.output


# -- validate: the decision under each signature policy --------------------------------------


def policy_lines(output: str) -> dict[str, str]:
    """`{policy: decision}` from validate's per-policy lines; the default is marked `*`."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Decision by signature"))
    found = {}
    for line in lines[start + 1 : start + 4]:
        mark, policy, decision = line[0], line[2:20].strip(), line[21:]
        found[policy + ("*" if mark == "*" else "")] = decision
    return found


def test_validate_says_what_each_policy_decides_for_the_kit_sample() -> None:
    result = run("validate", EDOC_NEW)
    assert result.exit_code == 0, result.output
    assert "Signature: unverifiable (SIGNATURE_UNSUPPORTED_TRANSFORM:" in result.output
    decisions = policy_lines(result.output)
    assert decisions["require"].startswith(
        "refuse (SIGNATURE_UNSUPPORTED_TRANSFORM: unsupported transform"
    )
    assert decisions["verify-if-present*"] == (
        "accept with warnings (EDXML_CODE_NONSTANDARD, SIGNATURE_UNSUPPORTED_TRANSFORM)"
    )
    assert decisions["off"] == "accept with warning (EDXML_CODE_NONSTANDARD)"
    assert result.output.strip().splitlines()[-1].startswith("VALID")


def test_validate_an_unsigned_status() -> None:
    result = run("validate", SAMPLES / "status_acceptance_03.edxml")
    assert result.exit_code == 0, result.output
    assert "Signature: absent" in result.output
    assert policy_lines(result.output) == {
        "require": "refuse (SIGNATURE_REQUIRED: this sender must sign its packages (signature "
        "policy: require))",
        "verify-if-present*": "accept",
        "off": "accept",
    }


def test_validate_a_structural_refusal_is_the_same_under_every_policy() -> None:
    result = run("validate", SAMPLES / "edoc.edxml")
    assert result.exit_code == 1
    assert "Signature:" not in result.output  # the node never gets to it
    decisions = policy_lines(result.output)
    assert set(decisions) == {"require", "verify-if-present*", "off"}
    assert all(d.startswith("refuse (XML_UNBOUND_PREFIX: ") for d in decisions.values())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(trust directory, signed package, tampered copy)."""
    root = root_authority()
    ca = intermediate(root)
    signer = ca.issue("Van thu (test)")
    directory = tmp_path_factory.mktemp("cli-trust")
    (directory / "root.pem").write_bytes(root.cert_pem)
    package = sign_package(
        document("000.00.01.H53", ["000.00.02.H53"]),
        signer.key_pem,
        signer.cert_pem,
        extra_certs=[ca.cert_pem],
    )
    signed_path, tampered_path = directory / "signed.edxml", directory / "tampered.edxml"
    signed_path.write_bytes(package)
    tampered_path.write_bytes(package.replace(b"V/v k", b"V/v K", 1))
    return directory, signed_path, tampered_path


def run_with_trust(trust_dir: Path, *args: str | Path, policy: str | None = None) -> Result:
    env = {"LIENTHONG_TRUST_DIR": str(trust_dir)}
    if policy:
        env["LIENTHONG_SIGNATURE_POLICY"] = policy
    return CliRunner().invoke(main, ["edxml", *map(str, args)], env=env, catch_exceptions=False)


def test_validate_a_valid_signature_is_accepted_under_every_policy(
    pki: tuple[Path, Path, Path],
) -> None:
    trust_dir, signed_path, _ = pki
    result = run_with_trust(trust_dir, "validate", signed_path)
    assert result.exit_code == 0, result.output
    assert "Signature: valid" in result.output
    assert policy_lines(result.output) == {
        "require": "accept",
        "verify-if-present*": "accept",
        "off": "accept",
    }


def test_validate_a_forged_signature_is_refused_unless_verification_is_off(
    pki: tuple[Path, Path, Path],
) -> None:
    """Structurally valid, so exit 0: the signature's refusal is on the policy lines."""
    trust_dir, _, tampered_path = pki
    result = run_with_trust(trust_dir, "validate", tampered_path, policy="require")
    assert result.exit_code == 0, result.output
    assert "Signature: invalid (SIGNATURE_DIGEST_MISMATCH:" in result.output
    decisions = policy_lines(result.output)
    assert decisions["require*"].startswith("refuse (SIGNATURE_DIGEST_MISMATCH: ")
    assert decisions["verify-if-present"].startswith("refuse (SIGNATURE_DIGEST_MISMATCH: ")
    assert decisions["off"] == "accept"
    assert result.output.strip().splitlines()[-1].startswith("VALID")
