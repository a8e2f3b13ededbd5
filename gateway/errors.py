"""Every way the gateway refuses a request: categories, and under them each refusal.

A category fixes the stable `code`, the HTTP status and the `/vxp` ErrorCode; a leaf under it
adds only its Vietnamese text (`text_vi`, the head of ErrorDesc; a `{field}` in it is filled
from the leaf's field of that name). Raise sites pass only details: the English `detail`,
`problems`, `extra`. A category is raised as such only where no ErrorDesc is answered
(`/api/v1`, operators, the command line).

    class                           code (HTTP, /vxp ErrorCode)       text_vi
    GatewayError                    GATEWAY_ERROR (500, 20)           (no text: the base)
     ├─ InternalError               "Loi he thong"
     ├─ AuthenticationFailed        AUTH_FAILED (401, 15)             "Xac thuc that bai"
     │   ├─ CredentialsMissing      "Thieu thong tin xac thuc"
     │   ├─ WrongCredentials        "Sai systemId hoac secret"
     │   ├─ SignHeaderMalformed     "Sai dinh dang sign-header"
     │   ├─ HeaderTampered          "Header bi thay doi"
     │   ├─ SystemIdUnsigned        "Sai systemId"
     │   ├─ WrongOperation          "Yeu cau khong dung nghiep vu"
     │   ├─ TimestampInvalid        "Sai timestamp"
     │   ├─ TimestampInFuture       "Timestamp khong hop le"
     │   └─ TimestampStale          "Timestamp het han"
     ├─ SystemDisabled              SYSTEM_DISABLED (403, 29)         "He thong da bi khoa"
     ├─ PermissionDenied            PERMISSION_DENIED (403, 19)       "Khong co quyen"
     │   ├─ RoleNotAllowed          "Khong co quyen"
     │   ├─ SenderMismatch          "Don vi gui khong khop"
     │   ├─ SenderNotRegistered     "Don vi gui chua dang ky"
     │   └─ AgencyOutsideSystem     "Don vi ngoai pham vi he thong quan ly"
     ├─ PackageRejected             PACKAGE_INVALID (422, 22)         "Goi tin bi tu choi"
     │   ├─ PackageMalformed        "Goi tin khong hop le"
     │   ├─ DtdForbidden            "Khong chap nhan DTD"
     │   ├─ EncodingInvalid         "Goi tin phai ma hoa UTF-8"
     │   ├─ MessageHeaderMissing    "Thieu MessageHeader"
     │   ├─ PackageNotEdxml         "Goi tin khong dung chuan edXML"
     │   ├─ PackageKindMismatch     "Sai loai goi tin"
     │   ├─ RecipientNotInPackage   "Don vi nhan khong co trong goi tin"
     │   ├─ OriginalUnknown         "Khong tim thay van ban goc"
     │   ├─ StatusFlowBroken        "Sai trinh tu trang thai"
     │   └─ ValueTooLong            "Du lieu qua dai"
     ├─ SignatureRejected           SIGNATURE_REJECTED (422, 25)      "Chu ky so khong hop le"
     ├─ BodyIntegrityFailed         BODY_HASH_MISMATCH (400, 10)      "Ma bam tep khong khop"
     ├─ PackageTooLarge             PACKAGE_TOO_LARGE (413, 10)
     │                              "Goi tin vuot qua gioi han {limit} byte"
     ├─ UnsupportedMediaType        UNSUPPORTED_MEDIA_TYPE (415, 10)
     │                              "Sai Content-Type {kind}, chi nhan {accepted}"
     ├─ RequestTooLarge             REQUEST_TOO_LARGE (413, 27)
     │                              "Du lieu vuot qua gioi han {limit} byte"
     ├─ HeadersTooLarge             HEADERS_TOO_LARGE (431, 27)       "Header qua lon"
     │   ├─ HeadTooLong             "Header qua lon"
     │   └─ TooManyHeaders          "Qua nhieu header"
     ├─ RequestTimeout              REQUEST_TIMEOUT (408, 27)         "Het thoi gian cho"
     │   ├─ HeadTimeout             "Het thoi gian cho yeu cau"
     │   └─ BodyTimeout             "Het thoi gian nhan du lieu"
     ├─ TooManyUploads              TOO_MANY_UPLOADS (429, 28)
     │                              "Qua nhieu goi tin dang gui dong thoi, gui lai sau"
     ├─ RecipientUnknown            RECIPIENT_UNKNOWN (422, 18)       "Don vi nhan khong ton tai"
     ├─ RecipientClosed             RECIPIENT_CLOSED (422, 23)
     │                              "Don vi nhan da ngung hoat dong (giai the)"
     ├─ RecipientLocked             RECIPIENT_LOCKED (422, 23)        "Don vi nhan dang bi khoa"
     ├─ DuplicatePackage            DUPLICATE_DOCUMENT (409, 24)      "Goi tin da duoc gui"
     │   ├─ DocumentDuplicate       "Van ban da duoc gui truoc do"
     │   └─ StatusDuplicate         "Trang thai da duoc gui"
     ├─ NotFound                    NOT_FOUND (404, 26)               "Khong tim thay"
     │   ├─ DocumentNotFound        "Khong tim thay van ban"
     │   └─ AgencyNotFound          "Khong tim thay don vi"
     ├─ InvalidRequest              INVALID_REQUEST (400, 27)         "Yeu cau khong hop le"
     │   ├─ RequestUnknown          "Sai yeu cau"
     │   ├─ ParameterMissing        "Thieu tham so {name}"
     │   ├─ ParameterInvalid        "Sai tham so {name}"
     │   ├─ MessageTypeInvalid      "Sai messagetype"
     │   ├─ AcknowledgementInvalid  "Sai trang thai"
     │   ├─ BodyEmpty               "Tep rong"
     │   ├─ BodyTooLarge            "Du lieu qua lon"
     │   ├─ BodyMalformed           "Sai dinh dang du lieu"
     │   ├─ CursorInvalid           "Sai cursor"
     │   ├─ ReasonMissing           "Can ghi ly do"
     │   ├─ StateTransitionInvalid  "Trang thai khong hop le"
     │   ├─ NotYetDownloaded        "Chua tai van ban"
     │   ├─ AgencyInfoInvalid       "Thong tin don vi khong hop le"
     │   ├─ AgencyMergedOrDissolved "Don vi da sap nhap hoac giai the"
     │   ├─ AgencyHasSubUnits       "Don vi con don vi truc thuoc"
     │   ├─ SystemHasDeliveries     "He thong con van ban chua hoan tat"
     │   └─ TextUnstorable          "Du lieu chua ky tu khong hop le"
     └─ ServiceUnavailable          SERVICE_UNAVAILABLE (503, 20)     "Loi he thong, thu lai sau"

The catalogue is the contract with agency software: codes never change meaning. `/vxp` maps to
`ErrorCode`/`ErrorDesc` (SPEC §4.1, extended from 24 on), `/api/v1` to problem+json, each in
one handler (`gateway.api.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

# Re-exported: refusals carry problems, and callers import them from here.
from gateway.problems import ERROR_DESC_BUDGET as ERROR_DESC_BUDGET
from gateway.problems import MAX_PROBLEM_BYTES as MAX_PROBLEM_BYTES
from gateway.problems import MAX_PROBLEMS as MAX_PROBLEMS
from gateway.problems import MAX_PROBLEMS_PER_CODE as MAX_PROBLEMS_PER_CODE
from gateway.problems import Problem as Problem
from gateway.problems import ascii_safe as ascii_safe
from gateway.problems import bounded as bounded
from gateway.problems import list_within as list_within


@dataclass
class GatewayError(Exception):
    """Base of every refusal; `detail` is English, the class's `text_vi` Vietnamese."""

    detail: str
    problems: list[Problem] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    code = "GATEWAY_ERROR"
    http_status = 500
    vxp_code = "20"
    title = "Gateway error"
    text_vi: ClassVar[str] = ""
    """The head of ErrorDesc, ASCII; a `{field}` in it is filled from the refusal's field."""

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    @property
    def desc_vi(self) -> str:
        """`text_vi` with its fields filled in: the Vietnamese head of ErrorDesc."""
        return self.text_vi.format_map({f.name: getattr(self, f.name) for f in fields(self)})

    @property
    def response_headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides its body (e.g. `Retry-After`)."""
        return {}

    @property
    def error_desc(self) -> str:
        """ErrorDesc as the SDKs print it: Vietnamese then English, ASCII only. It is all an
        SDK user ever sees, so a refused package names every error (warnings only when there
        is no error), up to ERROR_DESC_BUDGET characters, then how many more there are."""
        head = f"{self.desc_vi}: " if self.desc_vi else ""
        problems = [p for p in self.problems if p.severity == "error"] or self.problems
        if not problems:
            return ascii_safe(head + self.detail)
        return ascii_safe(
            head
            + list_within(
                [
                    f"{p.path}: {p.message} [{p.code}]" if p.path else f"{p.message} [{p.code}]"
                    for p in problems
                ],
                ERROR_DESC_BUDGET - len(head),
            )
        )


class InternalError(GatewayError):
    """A defect: the request was not completed."""

    text_vi = "Loi he thong"


# -- authentication: 401, /vxp 15 -------------------------------------------------------


class AuthenticationFailed(GatewayError):
    code, http_status, vxp_code, title = "AUTH_FAILED", 401, "15", "Authentication failed"
    text_vi = "Xac thuc that bai"


class CredentialsMissing(AuthenticationFailed):
    text_vi = "Thieu thong tin xac thuc"


class WrongCredentials(AuthenticationFailed):
    text_vi = "Sai systemId hoac secret"


class SignHeaderMalformed(AuthenticationFailed):
    text_vi = "Sai dinh dang sign-header"


class HeaderTampered(AuthenticationFailed):
    text_vi = "Header bi thay doi"


class SystemIdUnsigned(AuthenticationFailed):
    text_vi = "Sai systemId"


class WrongOperation(AuthenticationFailed):
    """A request signed for another operation (replayed against this one)."""

    text_vi = "Yeu cau khong dung nghiep vu"


class TimestampInvalid(AuthenticationFailed):
    text_vi = "Sai timestamp"


class TimestampInFuture(AuthenticationFailed):
    text_vi = "Timestamp khong hop le"


class TimestampStale(AuthenticationFailed):
    text_vi = "Timestamp het han"


class SystemDisabled(GatewayError):
    """The caller proved its credentials, but an operator disabled its system (`lienthong
    systems disable`). Its own code, so that its software and people can tell "your secret
    is wrong" (15) from "your system is switched off here" (29); only a caller that
    authenticated is told this (a stranger still gets 15)."""

    code, http_status, vxp_code, title = "SYSTEM_DISABLED", 403, "29", "System disabled"
    text_vi = "He thong da bi khoa"


# -- permission: 403, /vxp 19 -----------------------------------------------------------


class PermissionDenied(GatewayError):
    code, http_status, vxp_code, title = "PERMISSION_DENIED", 403, "19", "Not allowed"
    text_vi = "Khong co quyen"


class RoleNotAllowed(PermissionDenied):
    text_vi = "Khong co quyen"


class SenderMismatch(PermissionDenied):
    text_vi = "Don vi gui khong khop"


class SenderNotRegistered(PermissionDenied):
    text_vi = "Don vi gui chua dang ky"


class AgencyOutsideSystem(PermissionDenied):
    text_vi = "Don vi ngoai pham vi he thong quan ly"


# -- the package itself: 422, /vxp 22 ---------------------------------------------------


class PackageRejected(GatewayError):
    code, http_status, vxp_code, title = "PACKAGE_INVALID", 422, "22", "Package rejected"
    text_vi = "Goi tin bi tu choi"


class PackageMalformed(PackageRejected):
    """Not well-formed XML, or no edXMLEnvelope (the streaming scan)."""

    text_vi = "Goi tin khong hop le"


class DtdForbidden(PackageRejected):
    text_vi = "Khong chap nhan DTD"


class EncodingInvalid(PackageRejected):
    text_vi = "Goi tin phai ma hoa UTF-8"


class MessageHeaderMissing(PackageRejected):
    text_vi = "Thieu MessageHeader"


class PackageNotEdxml(PackageRejected):
    """The edXML rules found errors (every one is in `problems`)."""

    text_vi = "Goi tin khong dung chuan edXML"


class PackageKindMismatch(PackageRejected):
    text_vi = "Sai loai goi tin"


class RecipientNotInPackage(PackageRejected):
    text_vi = "Don vi nhan khong co trong goi tin"


class OriginalUnknown(PackageRejected):
    """A status for a document that did not go through this node."""

    text_vi = "Khong tim thay van ban goc"


class StatusFlowBroken(PackageRejected):
    text_vi = "Sai trinh tu trang thai"


class ValueTooLong(PackageRejected):
    text_vi = "Du lieu qua dai"


class SignatureRejected(GatewayError):
    code, http_status, vxp_code, title = "SIGNATURE_REJECTED", 422, "25", "Signature rejected"
    text_vi = "Chu ky so khong hop le"


# -- the request's size, shape and pace ------------------------------------------------


class BodyIntegrityFailed(GatewayError):
    code, http_status, vxp_code, title = "BODY_HASH_MISMATCH", 400, "10", "Body does not match"
    text_vi = "Ma bam tep khong khop"


@dataclass
class PackageTooLarge(GatewayError):
    code, http_status, vxp_code, title = "PACKAGE_TOO_LARGE", 413, "10", "Package too large"
    text_vi = "Goi tin vuot qua gioi han {limit} byte"

    limit: int = field(kw_only=True)


@dataclass
class UnsupportedMediaType(GatewayError):
    code, http_status, vxp_code, title = (
        "UNSUPPORTED_MEDIA_TYPE",
        415,
        "10",
        "Unsupported media type",
    )
    text_vi = "Sai Content-Type {kind}, chi nhan {accepted}"

    kind: str = field(kw_only=True)
    accepted: str = field(kw_only=True)


@dataclass
class RequestTooLarge(GatewayError):
    code, http_status, vxp_code, title = "REQUEST_TOO_LARGE", 413, "27", "Request too large"
    text_vi = "Du lieu vuot qua gioi han {limit} byte"

    limit: int = field(kw_only=True)


class HeadersTooLarge(GatewayError):
    code, http_status, vxp_code, title = (
        "HEADERS_TOO_LARGE",
        431,
        "27",
        "Request header fields too large",
    )
    text_vi = "Header qua lon"


class HeadTooLong(HeadersTooLarge):
    text_vi = "Header qua lon"


class TooManyHeaders(HeadersTooLarge):
    text_vi = "Qua nhieu header"


class RequestTimeout(GatewayError):
    code, http_status, vxp_code, title = "REQUEST_TIMEOUT", 408, "27", "Request timeout"
    text_vi = "Het thoi gian cho"


class HeadTimeout(RequestTimeout):
    text_vi = "Het thoi gian cho yeu cau"


class BodyTimeout(RequestTimeout):
    text_vi = "Het thoi gian nhan du lieu"


class TooManyUploads(GatewayError):
    """Throttling, not a verdict on the package: the client should send it again later."""

    code, http_status, vxp_code, title = "TOO_MANY_UPLOADS", 429, "28", "Too many uploads"
    text_vi = "Qua nhieu goi tin dang gui dong thoi, gui lai sau"
    retry_after_seconds = 5

    @property
    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


# -- routing and duplicates -------------------------------------------------------------


class RecipientUnknown(GatewayError):
    code, http_status, vxp_code, title = "RECIPIENT_UNKNOWN", 422, "18", "Recipient unknown"
    text_vi = "Don vi nhan khong ton tai"


class RecipientClosed(GatewayError):
    """Every refused recipient is one the directory closed (`agencies retire`, or
    `deleteAgency` by its system): it existed and no longer receives, which a sender must not
    take for a typo. ErrorCode 23 ("recipient locked" in the integration guide): permanent,
    so a forwarding node does not retry it either."""

    code, http_status, vxp_code, title = "RECIPIENT_CLOSED", 422, "23", "Recipient closed"
    text_vi = "Don vi nhan da ngung hoat dong (giai the)"


class RecipientLocked(GatewayError):
    """Every recipient exists, but the system that serves one is disabled here: the package
    is refused (not handed to a less specific system or a peer), so the sender knows it was
    not delivered and sends it again once the system is enabled. ErrorCode 23 like
    `RecipientClosed` ("recipient locked" in the integration guide, which this is to the
    letter); the problem code tells the two apart."""

    code, http_status, vxp_code, title = "RECIPIENT_LOCKED", 422, "23", "Recipient locked"
    text_vi = "Don vi nhan dang bi khoa"


class DuplicatePackage(GatewayError):
    code, http_status, vxp_code, title = "DUPLICATE_DOCUMENT", 409, "24", "Duplicate document"
    text_vi = "Goi tin da duoc gui"


class DocumentDuplicate(DuplicatePackage):
    text_vi = "Van ban da duoc gui truoc do"


class StatusDuplicate(DuplicatePackage):
    text_vi = "Trang thai da duoc gui"


# -- not found: 404, /vxp 26 ------------------------------------------------------------


class NotFound(GatewayError):
    code, http_status, vxp_code, title = "NOT_FOUND", 404, "26", "Not found"
    text_vi = "Khong tim thay"


class DocumentNotFound(NotFound):
    text_vi = "Khong tim thay van ban"


class AgencyNotFound(NotFound):
    text_vi = "Khong tim thay don vi"


# -- invalid request: 400, /vxp 27 ------------------------------------------------------


class InvalidRequest(GatewayError):
    code, http_status, vxp_code, title = "INVALID_REQUEST", 400, "27", "Invalid request"
    text_vi = "Yeu cau khong hop le"


class RequestUnknown(InvalidRequest):
    """An unknown `/vxp` operation or a method it does not take."""

    text_vi = "Sai yeu cau"


@dataclass
class ParameterMissing(InvalidRequest):
    text_vi = "Thieu tham so {name}"

    name: str = field(kw_only=True)


@dataclass
class ParameterInvalid(InvalidRequest):
    text_vi = "Sai tham so {name}"

    name: str = field(kw_only=True)


class MessageTypeInvalid(InvalidRequest):
    text_vi = "Sai messagetype"


class AcknowledgementInvalid(InvalidRequest):
    text_vi = "Sai trang thai"


class BodyEmpty(InvalidRequest):
    text_vi = "Tep rong"


class BodyTooLarge(InvalidRequest):
    """A `/vxp` directory body over its limit (400, where `RequestTooLarge` is 413)."""

    text_vi = "Du lieu qua lon"


class BodyMalformed(InvalidRequest):
    text_vi = "Sai dinh dang du lieu"


class CursorInvalid(InvalidRequest):
    text_vi = "Sai cursor"


class ReasonMissing(InvalidRequest):
    text_vi = "Can ghi ly do"


class StateTransitionInvalid(InvalidRequest):
    text_vi = "Trang thai khong hop le"


class NotYetDownloaded(InvalidRequest):
    text_vi = "Chua tai van ban"


class AgencyInfoInvalid(InvalidRequest):
    text_vi = "Thong tin don vi khong hop le"


class AgencyMergedOrDissolved(InvalidRequest):
    text_vi = "Don vi da sap nhap hoac giai the"


class AgencyHasSubUnits(InvalidRequest):
    text_vi = "Don vi con don vi truc thuoc"


class SystemHasDeliveries(InvalidRequest):
    """`systems remove` of a system whose deliveries are not finished, without `--force`."""

    text_vi = "He thong con van ban chua hoan tat"


class TextUnstorable(InvalidRequest):
    text_vi = "Du lieu chua ky tu khong hop le"


class ServiceUnavailable(GatewayError):
    code, http_status, vxp_code, title = "SERVICE_UNAVAILABLE", 503, "20", "Service unavailable"
    text_vi = "Loi he thong, thu lai sau"


class BrokerUnavailable(Exception):
    """The broker did not confirm a publish; the outbox row stays unpublished (not a refusal)."""
