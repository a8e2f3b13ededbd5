"""Contract: attachments are stored decoded, listed in the metadata and served bit-exact."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from urllib.parse import quote

from tests.support.nodes import Node
from tests.support.samples import document

SENDER, RECEIVER, OTHER = "000.00.01.H53", "000.00.02.H53", "000.00.03.H53"


def attachment_bytes(package: bytes) -> bytes:
    encoded = re.search(rb"<edXML:ContentTransferEncoded[^>]*>(.*?)</", package, re.S)
    assert encoded is not None
    return base64.b64decode(encoded.group(1))


async def test_metadata_lists_attachments_and_warnings_and_serves_them(node: Node) -> None:
    sender = node.rest_headers(await node.add_system("sys.sender", SENDER))
    receiver = node.rest_headers(await node.add_system("sys.receiver", RECEIVER, "28.22.H17"))
    other = node.rest_headers(await node.add_system("sys.other", OTHER))
    package = document(SENDER, [RECEIVER, "28.22.H17"])
    created = await node.http.post("/api/v1/packages", content=package, headers=sender)
    assert created.status_code == 201, created.text
    message_id = created.json()["id"]
    expected = attachment_bytes(package)

    view = (await node.http.get(f"/api/v1/packages/{message_id}", headers=sender)).json()
    [attachment] = view["attachments"]
    assert attachment == {
        "position": 1,
        "content_id": "cid:209",
        "name": "1896_QD-TTg_m_294779.doc",
        "description": "1896_QD-TTg_m_294779.doc",
        "content_type": "application/zip",
        "size": len(expected),
        "sha256": hashlib.sha256(expected).hexdigest(),
        "zipped": True,
        "url": f"/api/v1/packages/{message_id}/attachments/1",
    }
    assert ("EDXML_CODE_NONSTANDARD", "MessageHeader/To[2]/OrganId") in {
        (w["code"], w["path"]) for w in view["warnings"]
    }
    assert view["header"]["subject"].startswith("V/v kết nối")
    assert view["business_type"] == 0 and view["signed"] is False
    assert view["signature"]["outcome"] == "absent"
    assert len(view["deliveries"]) == 2

    as_recipient = (await node.http.get(f"/api/v1/packages/{message_id}", headers=receiver)).json()
    assert len(as_recipient["deliveries"]) == 2  # both recipients are this system's
    url = attachment["url"]
    exact = await node.http.get(url, headers=receiver)
    assert exact.status_code == 200 and exact.content == expected
    assert "filename*=UTF-8''1896_QD-TTg_m_294779.doc" in exact.headers["content-disposition"]
    inside = zipfile.ZipFile(io.BytesIO(expected))
    unzipped = await node.http.get(url, params={"unzip": "true"}, headers=receiver)
    assert unzipped.status_code == 200
    assert unzipped.content == inside.read(inside.namelist()[0])
    assert quote("1896_QD-TTg_m_294779.doc") in unzipped.headers["content-disposition"]
    for forbidden in (url, f"/api/v1/packages/{message_id}"):
        assert (await node.http.get(forbidden, headers=other)).status_code == 404
    assert (await node.http.get(url.replace("/1", "/2"), headers=sender)).status_code == 404


async def test_vietnamese_attachment_name_survives_download(node: Node) -> None:
    sender = node.rest_headers(await node.add_system("sys.sender", SENDER))
    await node.add_system("sys.receiver", RECEIVER)
    name = "Quyết định số 1896 về việc kết nối liên thông văn bản điện tử.doc"
    package = document(SENDER, [RECEIVER]).replace(
        b"<AttachmentName>1896_QD-TTg_m_294779.doc</AttachmentName>",
        f"<AttachmentName>{name}</AttachmentName>".encode(),
    )
    message_id = (await node.http.post("/api/v1/packages", content=package, headers=sender)).json()[
        "id"
    ]
    view = (await node.http.get(f"/api/v1/packages/{message_id}", headers=sender)).json()
    assert view["attachments"][0]["name"] == name
    response = await node.http.get(view["attachments"][0]["url"], headers=sender)
    assert f"filename*=UTF-8''{quote(name)}" in response.headers["content-disposition"]


async def test_broken_attachment_is_refused_with_its_path(node: Node) -> None:
    sender = node.rest_headers(await node.add_system("sys.sender", SENDER))
    await node.add_system("sys.receiver", RECEIVER)
    package = re.sub(
        rb"(<edXML:ContentTransferEncoded[^>]*>)UEsD", rb"\1U!sD", document(SENDER, [RECEIVER])
    )
    answer = await node.http.post("/api/v1/packages", content=package, headers=sender)
    assert answer.status_code == 422
    assert {(e["code"], e["path"]) for e in answer.json()["errors"]} == {
        ("EDXML_BASE64", "AttachmentEncoded/Attachment[1]/ContentTransferEncoded")
    }
    orphan = document(SENDER, [RECEIVER]).replace(
        b"<ContentId>cid:209</ContentId>", b"<ContentId>cid:999</ContentId>"
    )
    answer = await node.http.post("/api/v1/packages", content=orphan, headers=sender)
    assert {(e["code"], e["path"]) for e in answer.json()["errors"]} == {
        ("EDXML_REFERENCE_MISSING", "AttachmentEncoded/Attachment[1]/ContentId"),
        ("EDXML_ATTACHMENT_MISSING", "edXMLBody/edXMLManifest/Reference[1]/ContentId"),
    }
    assert list((node.backing.data_dir / "spool").iterdir()) == []


async def test_sdk_error_desc_lists_the_problem(node: Node) -> None:
    client = await node.add_system("sys.sender", SENDER)
    await node.add_system("sys.receiver", RECEIVER)
    package = document(SENDER, [RECEIVER]).replace(
        b"<edXML:PromulgationDate>2019/01/16<", b"<edXML:PromulgationDate>16/01/2019<"
    )
    answer = await client.send_edoc(package, SENDER)
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "22")
    assert "MessageHeader/PromulgationInfo/PromulgationDate" in answer["ErrorDesc"]
    assert answer["errors"][0]["path"] == "MessageHeader/PromulgationInfo/PromulgationDate"
