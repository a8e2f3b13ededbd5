"""Hypothesis strategies for `/vxp` requests: SDK-style signed `XroadVnpt-*` header sets,
then mutated.

A request is a list of header entries, each signed (named in `XroadVnpt-sign-header`) or
not and sent or not, so that every way a real or hostile client can differ from the SDK is
one small change: a header missing, two spellings of a name with different values, a value
that is not ASCII or not UTF-8, a huge one, a sign-header that is not the JSON the SDK
writes (signed with the right secret, so it gets past the HMAC to the parser), parameters
of the wrong type, and parameters that make no sense but are validly signed. Whether a
mutation that cannot leave the request authenticated, whatever else happens to it (a
sign-header that is not a JSON object of signed headers, a signed systemid of another
system), is recorded in `breaks_auth`, and `mac_matches` says whether the HMAC is the one the
real secret makes: a request failing either must be answered 15. Other mutations may or may not
cost the authentication (a dropped header may have a twin in another spelling) and are only
held to the properties every answer has.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import strategies as st

from adapters.vxp_client import SDK_HEADERS, sdk_hex, sdk_timestamp
from tests.support.samples import document

PREFIX = "XroadVnpt-"
OCTETS, JSON_TYPE = "application/octet-stream", "application/json"

OPERATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sendEdoc": ("POST", ("from", "servicetype", "messagetype", "hash-file", "to")),
    "getReceivedEdocList": (
        "POST",
        ("messagetype", "fromDate", "toDate", "to", "status", "pageSize", "pageIndex"),
    ),
    "getEdoc": ("POST", ("docId", "filePath")),
    "downloadEdoc": ("GET", ("docId", "filePath")),
    "updateStatus": ("POST", ("docid", "status", "description")),
    "getSentEdocList": ("POST", ("docId",)),
    "countReceiveEdoc": ("POST", ()),
    "countReceiveStatus": ("POST", ()),
    "getAgenciesList": ("POST", ()),
    "getAgenciesListQD20": ("POST", ("level",)),
    "getSynchronizeUnit": ("POST", ("fromVersion",)),
    "registerAgency": ("POST", ()),
    "deleteAgency": ("POST", ("AgencyCode",)),
}
"""Operation → (the method the SDK uses, the parameters it sends)."""

ALL_PARAMETERS = sorted(
    {p for _, params in OPERATIONS.values() for p in params}
    | {"docid", "docId", "fromVersion", "version"}
)

_EMPTY_ZIP = b"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="
_ATTACHMENT_TEXT = re.compile(rb"(<edXML:ContentTransferEncoded[^>]*>)[^<]*(<)")


def small_document(sender: str, recipients: list[str], document_id: str | None = None) -> bytes:
    """A valid document with an empty zip as its attachment: the sample's 360 KB one would
    make every accepted example cost a real upload."""
    return _ATTACHMENT_TEXT.sub(
        lambda m: m.group(1) + _EMPTY_ZIP + m.group(2),
        document(sender, recipients, document_id),
        count=1,
    )


@dataclass
class World:
    """What exists on the node under test, for parameters that name real things."""

    sender_id: str
    sender_secret: str
    receiver_id: str
    receiver_secret: str
    sender_code: str
    receiver_code: str
    message_ids: list[str] = field(default_factory=list)
    delivery_ids: list[str] = field(default_factory=list)

    def secret_of(self, system_id: str) -> str:
        return self.sender_secret if system_id == self.sender_id else self.receiver_secret


@dataclass
class Entry:
    name: str
    value: str
    signed: bool = True
    sent: bool = True
    wire: bytes | None = None
    """The bytes sent when they are not the value's UTF-8 (a Java SDK's Latin-1, say)."""

    def sent_bytes(self) -> bytes:
        return self.wire if self.wire is not None else self.value.encode("utf-8")


@dataclass
class VxpRequest:
    operation: str
    method: str
    system_id: str
    secret: str
    entries: list[Entry]
    body: bytes
    sign_header: str | None = None
    """Replaces the JSON the entries make (a hostile or broken sign-header)."""
    mac: str | None = None
    """Replaces the HMAC the secret makes."""
    breaks_auth: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def signed_json(self) -> str:
        if self.sign_header is not None:
            return self.sign_header
        pairs = [
            f"{json.dumps(e.name, ensure_ascii=False)}:{json.dumps(e.value, ensure_ascii=False)}"
            for e in self.entries
            if e.signed
        ]
        return "{" + ",".join(pairs) + "}"

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The raw header list, in order, duplicates kept."""
        sign_header = self.signed_json()
        mac = (
            self.mac
            if self.mac is not None
            else hmac.new(
                self.secret.encode(), sign_header.encode("utf-8", "surrogatepass"), hashlib.sha256
            ).hexdigest()
        )
        raw = [(e.name.encode(), e.sent_bytes()) for e in self.entries if e.sent]
        raw += [(k.encode(), v.encode()) for k, v in SDK_HEADERS.items()]
        content_type = next(
            (e.value for e in self.entries if e.name.lower() == "xroadvnpt-content-type"), JSON_TYPE
        )
        raw += [
            (b"Content-Type", content_type.encode("utf-8", "replace")),
            (
                b"XroadVnpt-sign-header-key",
                ";".join(e.name[len(PREFIX) :] for e in self.entries if e.signed).encode(
                    "utf-8", "replace"
                ),
            ),
            (b"XroadVnpt-sign-header", sign_header.encode("utf-8", "surrogatepass")),
            (b"XroadVnpt-hash-header", mac.encode("utf-8", "replace")),
        ]
        return raw

    def mac_matches(self, true_secret: str) -> bool:
        """Whether the HMAC sent is the one the system's real secret makes (the server
        compares case-insensitively, ignoring surrounding space)."""
        sent = (
            self.mac
            if self.mac is not None
            else hmac.new(
                self.secret.encode(),
                self.signed_json().encode("utf-8", "surrogatepass"),
                hashlib.sha256,
            ).hexdigest()
        )
        return (
            sent.strip().lower()
            == hmac.new(
                true_secret.encode(),
                self.signed_json().encode("utf-8", "surrogatepass"),
                hashlib.sha256,
            ).hexdigest()
        )

    def entry(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)


# -- values ------------------------------------------------------------------------------

HEADER_EDGE = [
    "",
    " ",
    "\t",
    "null",
    "[]",
    "{}",
    "-1",
    "0",
    "00",
    "1.5",
    "1e9",
    "999999999999999999999",
    "NaN",
    "abc",
    "Đồng Tháp",
    "\u202e",
    "\ufeff",
    "\U0001f600",
    "e\u0301" * 100,
    "%00",
    "../..",
    "#.H53",
    "*",
    "a;b",
    "a,b",
    '"',
    "\\",
    '["x"]',
    "[1,2]",
    '{"a":1}',
    "2026-02-30",
    "31/12/2999",
    "0000-00-00",
    "2026/12/01 25:61:61",
    "done",
    "fail",
    "processing",
    "new",
    "pending",
    "edoc",
    "status",
    "EDOC",
    "eDoc",
]


def header_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """What one header value can carry over HTTP/1.1: no CR, LF or NUL (a server refuses
    the request line before any app sees it), other controls neither (h11 and httptools
    refuse them too); Unicode goes as UTF-8."""
    characters = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
    return st.one_of(
        st.sampled_from(HEADER_EDGE),
        st.text(characters, max_size=max_size),
        st.integers(1, 16_000).map(lambda n: "Ư" * n),
    )


def dates() -> st.SearchStrategy[str]:
    now = datetime.now()
    return st.one_of(
        st.sampled_from(
            [
                "2026-12-01",
                "01/12/2026",
                "2026/12/01",
                "01-12-2026",
                "2026-12-01 10:00:00",
                "2026/12/01 10:00:00",
                "2026-12-01T10:00:00",
                "1900-01-01",
                "9999-12-31",
                "0001-01-01",
            ]
        ),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
            lambda d: d.strftime("%Y-%m-%d")
        ),
        st.just((now + timedelta(days=1)).strftime("%d/%m/%Y")),
    )


def parameter_value(name: str, world: World) -> st.SearchStrategy[str]:
    """A value for a parameter: one that makes sense where it can, else anything."""
    codes = [world.sender_code, world.receiver_code, "000.00.99.H53", "000.00.00.G22"]
    sensible: dict[str, st.SearchStrategy[str]] = {
        "messagetype": st.sampled_from(["edoc", "status", "EDOC", "Status", "other"]),
        "servicetype": st.sampled_from(["eDoc", "edoc", ""]),
        "from": st.sampled_from(codes),
        "to": st.one_of(
            st.sampled_from(codes[1:] + codes[:1]),
            st.lists(st.sampled_from(codes[1:]), max_size=3).map(json.dumps),
            st.sampled_from(["[", "[null]", "[1]", '["a b"]', "{}", ";;,"]),
        ),
        "status": st.sampled_from(["done", "fail", "processing", "new", "pending", "DONE"]),
        "docId": st.sampled_from(world.delivery_ids + world.message_ids + [str(uuid.uuid4())]),
        "filePath": st.sampled_from(["xml", "/tmp", "C:\\edoc", "thư mục", "../../etc"]),
        "pageSize": st.integers(-5, 10**12).map(str),
        "pageIndex": st.integers(-5, 10**12).map(str),
        "fromDate": dates(),
        "toDate": dates(),
        "level": st.integers(-2, 10**20).map(str),
        "fromVersion": st.integers(-2, 10**20).map(str),
        "AgencyCode": st.sampled_from(codes + ["000.00.77.H53", "H53", "x" * 40]),
        "description": header_text(3000),
        "version": st.just("3.0.201608"),
    }
    sensible["docid"] = sensible["docId"]
    if name not in sensible:
        return header_text()
    return st.one_of(sensible[name], sensible[name], sensible[name], header_text())


# -- requests ----------------------------------------------------------------------------


@st.composite
def signed_request(draw: st.DrawFn, world: World) -> VxpRequest:
    """A request the way the SDK makes it, with stale sticky parameters along."""
    operation = draw(st.sampled_from(sorted(OPERATIONS)), label="operation")
    method, params = OPERATIONS[operation]
    caller = draw(st.sampled_from(["sender", "receiver"]), label="caller")
    system_id = world.sender_id if caller == "sender" else world.receiver_id
    secret = world.sender_secret if caller == "sender" else world.receiver_secret
    stale = draw(st.lists(st.sampled_from(ALL_PARAMETERS), max_size=4, unique=True), label="sticky")
    names = list(dict.fromkeys([*params, *stale]))
    entries = [
        Entry(PREFIX + "systemid", system_id),
        Entry(PREFIX + "timestamp", sdk_timestamp(datetime.now())),
    ]
    for name in names:
        if name in params and draw(st.integers(0, 9)) == 9:
            continue  # a parameter the caller forgot
        entries.append(Entry(PREFIX + name, draw(parameter_value(name, world), label=name)))
    body = b"{}"
    if operation == "sendEdoc":
        body = draw(send_body(world, entries), label="body")
    elif operation == "registerAgency":
        body = draw(agency_body(world), label="body")
    entries.append(Entry(PREFIX + "Content-Type", OCTETS if operation == "sendEdoc" else JSON_TYPE))
    if method == "GET":
        body = b""
    return VxpRequest(operation, method, system_id, secret, entries, body)


@st.composite
def send_body(draw: st.DrawFn, world: World, entries: list[Entry]) -> bytes:
    """A package (valid, with the right or a wrong hash-file) or something else."""
    kind = draw(st.sampled_from(["valid", "valid", "duplicate", "garbage", "empty"]))
    if kind in ("valid", "duplicate"):
        document_id = None if kind == "valid" else f"{world.sender_code},2026/11/20,1/DUP"
        package = small_document(world.sender_code, [world.receiver_code], document_id)
    else:
        package = b"" if kind == "empty" else draw(st.binary(max_size=200))
    digest = hashlib.sha256(package).digest()
    declared = draw(
        st.sampled_from(
            [sdk_hex(digest), digest.hex(), sdk_hex(digest), digest.hex(), "0" * 64, "zz"]
        )
    )
    for entry in entries:
        if entry.name == PREFIX + "hash-file":
            entry.value = declared
        if entry.name == PREFIX + "from" and draw(st.integers(0, 3)) > 0:
            entry.value = world.sender_code
        if entry.name == PREFIX + "messagetype" and draw(st.integers(0, 3)) > 0:
            entry.value = "edoc"
    return package + (b"\r\n" if draw(st.booleans()) else b"")


AGENCY_FIELDS = ["id", "pcode", "code", "name", "mail", "mobile", "fax"]


@st.composite
def agency_body(draw: st.DrawFn, world: World) -> bytes:
    """registerAgency's JSON body, its fields sensible, nasty or of the wrong JSON type."""
    from tests.support.strategies import json_text  # shared with the API fuzzer

    values = st.one_of(
        st.sampled_from([world.sender_id, world.sender_code, "000.00.55.H53", "000.00.00.H53", ""]),
        json_text(),
        st.integers(),
        st.none(),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
    )
    fields = draw(st.lists(st.sampled_from(AGENCY_FIELDS), unique=True), label="fields")
    unit = {name: draw(values, label=name) for name in fields}
    shape = draw(st.sampled_from(["object", "object", "object", "list", "text", "bytes"]))
    if shape == "list":
        return json.dumps([unit]).encode()
    if shape == "text":
        return draw(
            st.sampled_from(
                [b"", b"{", b"null", b"\xff\xfe{}", b"\xef\xbb\xbf{}", b"[]", b'"x"', b"1e999"]
            )
        )
    if shape == "bytes":
        return draw(st.binary(max_size=100))
    return json.dumps(unit).encode()


# -- mutations ---------------------------------------------------------------------------

AUTH_HEADERS = ("systemid", "timestamp", "Content-Type")


@st.composite
def mutated_request(draw: st.DrawFn, world: World) -> VxpRequest:
    """`signed_request` with zero or more mutations applied."""
    request = draw(signed_request(world))
    for mutation in draw(
        st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=3), label="mutations"
    ):
        MUTATIONS[mutation](draw, request, world)
        request.changes.append(mutation)
    return request


def _pick(draw: st.DrawFn, request: VxpRequest) -> Entry | None:
    return draw(st.sampled_from(request.entries)) if request.entries else None


def _drop_header(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    """A header neither sent nor signed (the SDK never set it)."""
    entry = _pick(draw, request)
    if entry is not None:
        request.entries.remove(entry)


def _unsigned_extra(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    """A header sent but not signed: it must steer nothing."""
    name = PREFIX + draw(st.sampled_from(ALL_PARAMETERS))
    request.entries.append(
        Entry(name, draw(parameter_value(name[len(PREFIX) :], world)), signed=False)
    )


def _signed_not_sent(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    entry = _pick(draw, request)
    if entry is not None and entry.sent:
        entry.sent = False


def _altered_after_signing(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    entry = _pick(draw, request)
    if entry is not None and entry.signed and entry.sent:
        entry.wire = draw(header_text()).encode("utf-8")


def _second_spelling(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    """The sticky map's other spelling of a parameter, with another value, signed."""
    name = draw(
        st.sampled_from(
            [
                "docId",
                "docid",
                "DOCID",
                "Status",
                "status",
                "From",
                "messageType",
                "AgencyCode",
                "agencycode",
                "level",
            ]
        )
    )
    request.entries.insert(
        draw(st.integers(0, len(request.entries))),
        Entry(PREFIX + name, draw(parameter_value(name, world))),
    )


def _duplicate_name(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    """The same name twice with two values, both signed (a duplicated JSON key) or one."""
    entry = _pick(draw, request)
    if entry is not None:
        twin = Entry(
            entry.name,
            draw(parameter_value(entry.name[len(PREFIX) :], world)),
            signed=draw(st.booleans()),
        )
        request.entries.append(twin)


def _non_ascii_value(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    """Vietnamese in a parameter, sent as UTF-8 (authenticates) or as the Java SDK sends it,
    one byte per character (cannot authenticate)."""
    entry = _pick(draw, request)
    if entry is None:
        return
    entry.value = entry.value + draw(st.sampled_from(["Thư mục", "Đ", "ữ", "\U0001f600"]))
    if draw(st.booleans()) and entry.sent:
        low = (ord(c) & 0xFF for c in entry.value)  # NUL, CR, LF cross no HTTP/1.1 parser
        entry.wire = bytes(b if b not in (0, 10, 13) else 0x3F for b in low)


def _huge_value(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    entry = _pick(draw, request)
    if entry is not None:
        entry.value = draw(st.sampled_from(["x", "Ư", "9", '["000.00.02.H53",'])) * draw(
            st.integers(1_000, 30_000)
        )


def _wrong_secret(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    # Never the other system's secret: with `other systemid` the pair could be genuine.
    true = world.secret_of(request.system_id)
    request.secret = draw(st.sampled_from(["", "not-the-secret", true + "x", true[:-1]]))


def _other_system_id(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    """The signed systemid names another system than the one whose secret signs."""
    for entry in request.entries:
        if entry.name == PREFIX + "systemid":
            entry.value = draw(
                st.sampled_from(
                    [
                        world.receiver_id
                        if request.system_id == world.sender_id
                        else world.sender_id,
                        "99.99.W99",
                        "",
                        " " + request.system_id,
                    ]
                )
            )
            request.breaks_auth.append("systemid of another system")


def _broken_mac(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    good = hmac.new(
        request.secret.encode(),
        request.signed_json().encode("utf-8", "surrogatepass"),
        hashlib.sha256,
    ).hexdigest()
    mac = draw(st.sampled_from([good.upper(), f" {good} ", good[:-1], "", "Đ" + good, good + good]))
    request.mac = mac


def _bad_sign_header(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    """A sign-header that is not a JSON object of strings, validly MACed."""
    request.sign_header = draw(
        st.sampled_from(
            [
                "",
                "{",
                "[]",
                "null",
                '"x"',
                "1",
                '{"XroadVnpt-systemid": 1}',
                '{"systemid": "x"}',
                '{"XroadVnpt-systemid": null}',
                '{"XroadVnpt-systemid": ["a"]}',
                "\ufeff{}",
                '{"a":' * 50 + "1" + "}" * 50,
                '{"XroadVnpt-x": "\\ud800"}',
                '{"XroadVnpt-x": "\\u0000"}',
                request.signed_json()[:-1],
                request.signed_json() + "x",
            ]
        )
    )
    if request.sign_header.lstrip("\ufeff") not in ("{}",):
        request.breaks_auth.append("sign-header is not a signed JSON object")


def _content_type(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    entry = request.entry(PREFIX + "Content-Type")
    if entry is not None:
        entry.value = draw(
            st.sampled_from(
                [
                    OCTETS,
                    JSON_TYPE,
                    "text/xml",
                    "",
                    "application/json; charset=utf-8",
                    "multipart/form-data; boundary=x",
                    "Đ/x",
                ]
            )
        )


def _timestamp(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    entry = request.entry(PREFIX + "timestamp")
    if entry is not None:
        far = datetime.now() + timedelta(days=draw(st.integers(-40_000, 40_000)))
        entry.value = draw(
            st.sampled_from(
                [
                    sdk_timestamp(far),
                    "",
                    "x",
                    "99999999T999999",
                    "31022026T000000+0000",
                    "01010001T000000",
                ]
            )
        )


def _wrong_method(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    request.method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))


def _unknown_operation(draw: st.DrawFn, request: VxpRequest, world: World) -> None:
    request.operation = draw(
        st.sampled_from(["sendedoc", "getEdocs", "", "..%2F", "getEdoc/x", "Đ"])
    )


MUTATIONS = {
    "drop header": _drop_header,
    "unsigned extra": _unsigned_extra,
    "signed, not sent": _signed_not_sent,
    "altered after signing": _altered_after_signing,
    "second spelling": _second_spelling,
    "duplicate name": _duplicate_name,
    "non-ASCII value": _non_ascii_value,
    "huge value": _huge_value,
    "wrong secret": _wrong_secret,
    "other systemid": _other_system_id,
    "broken HMAC": _broken_mac,
    "bad sign-header": _bad_sign_header,
    "content type": _content_type,
    "timestamp": _timestamp,
    "wrong method": _wrong_method,
    "unknown operation": _unknown_operation,
}
