"""Reading the parameters SDK clients put in `XroadVnpt-*` headers.

The SDK's header map is sticky: a call also carries values left by earlier calls on the same
client object (SPEC §4.1). Each reader here therefore takes only values that make sense for
its operation, and when a stale value could hide something from the caller it errs towards
showing more: an item listed once too often is harmless, one hidden is a document that
"never arrives".
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.api.vxp_auth import VxpCall
from gateway.codes import is_valid_code
from gateway.errors import InvalidRequest, ParameterInvalid
from gateway.operators.selection import EARLIEST_YEAR, LATEST_YEAR
from gateway.records import InboxFilter

MAX_PAGE_SIZE = 500
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y")
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
LIST_STATUSES = {"new": False, "pending": True}
"""`status` values that filter a list; `done`/`fail`/`processing` are updateStatus values a
sticky header map carries along, and are ignored."""


def recipients_header(value: str | None) -> tuple[str, ...] | None:
    """The `to` header: a JSON array of codes as the SDK writes it (a bare code, or codes
    separated by commas or semicolons, are read too). None when absent or empty."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    codes: list[object]
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise _bad("to", "is not a JSON array of identifier codes") from None
        codes = parsed if isinstance(parsed, list) else [parsed]
    else:
        codes = [c for c in text.replace(";", ",").split(",")]
    cleaned = tuple(dict.fromkeys(str(c).strip() for c in codes if str(c).strip()))
    for code in cleaned:
        if not is_valid_code(code):
            raise _bad("to", f"holds {code[:40]!r}, which is not an identifier code")
    return cleaned or None


def inbox_filter(call: VxpCall, timezone: str) -> tuple[InboxFilter, int]:
    """The filters of getReceivedEdocList (`fromDate`, `toDate`, `to`, `status`, `pageSize`,
    `pageIndex`) and the page size. Pages count over the items not handed to another poll
    right now; an item passed over by paging is offered again by the next poll."""
    zone = ZoneInfo(timezone)
    page_size = _positive(call.param("pageSize"), "pageSize", MAX_PAGE_SIZE) or MAX_PAGE_SIZE
    page_index = _positive(call.param("pageIndex"), "pageIndex", 1_000_000) or 1
    recipients = None
    # A `to` left over from a sendEdoc on the same client (its hash-file rides along too)
    # names the send's recipients, not what to list: ignore it rather than hide items.
    if call.param("hash-file") is None:
        codes = recipients_header(call.param("to"))
        recipients = frozenset(c for c in codes if call.system.serves(c)) if codes else None
    status = (call.param("status") or "").strip().lower()
    return InboxFilter(
        created_from=_moment(call.param("fromDate"), "fromDate", zone, end_of_day=False),
        created_before=_moment(call.param("toDate"), "toDate", zone, end_of_day=True),
        recipients=recipients or None,
        handed_out=LIST_STATUSES.get(status),
        skip=(page_index - 1) * page_size,
    ), page_size


def _moment(value: str | None, name: str, zone: ZoneInfo, end_of_day: bool) -> datetime | None:
    """A date (the whole day: `toDate` is inclusive) or a date and time, local time, in the
    years operator filters take too: `toDate: 9999-12-31` as a whole day ends past the
    last date Python has (OverflowError, a 500), and year 1 in local time is before it in
    UTC."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    for layout in TIME_FORMATS:
        try:
            return _bounded(datetime.strptime(text, layout).replace(tzinfo=zone), name, text)
        except ValueError:
            continue
    for layout in DATE_FORMATS:
        try:
            day = datetime.strptime(text, layout).replace(tzinfo=zone)
        except ValueError:
            continue
        return (
            _bounded(day, name, text) + timedelta(days=1)
            if end_of_day
            else _bounded(day, name, text)
        )
    raise _bad(name, f"is {text[:40]!r}; expected a date such as 2026-12-01 or 01/12/2026")


def _bounded(moment: datetime, name: str, text: str) -> datetime:
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise _bad(name, f"is {text[:40]!r}; expected a year from {EARLIEST_YEAR} to {LATEST_YEAR}")
    return moment


def _positive(value: str | None, name: str, limit: int) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise _bad(name, f"is {text[:40]!r}; expected a positive whole number")
    return min(int(text), limit) or None


def _bad(name: str, problem: str) -> InvalidRequest:
    return ParameterInvalid(f"header XroadVnpt-{name} {problem}", name=name)
