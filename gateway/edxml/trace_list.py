"""Reading TraceHeaderList: the part of a package that belongs to the relays (SPEC §2.1).

Packages that crossed the national axis carry TraceHeaders that are not well formed: OrganId
absent, empty or the literal text `null`, a Timestamp only, a timestamp in another format.
None of it is the sender's doing and none of it decides where the package goes, so every
defect is a warning (`EDXML_TRACE_MALFORMED`, with the element's path), never a refusal. What
can be read is kept; what cannot is left out (None), never guessed: an unreadable OrganId is
not attributed to anyone, an ambiguous date is not turned into a time.

`sender_trace` picks the sender's own TraceHeader, whose time is the claimed signing time
(README "Signatures, trust and evidence"): a TraceHeader without an organ is never it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from lxml import etree

from gateway.codes import is_standard_shape, is_valid_code
from gateway.edxml.model import TIMESTAMP_FORMAT, VIETNAM, TraceHeader
from gateway.edxml.paths import element_path, local_name
from gateway.edxml.reader import qcvn_children
from gateway.errors import Problem

MALFORMED = "EDXML_TRACE_MALFORMED"
NONSTANDARD_CODE = "EDXML_CODE_NONSTANDARD"
NULL_TEXTS = frozenset({"null", "nil", "none", "undefined"})
"""What software writes for a missing value (Java's `String.valueOf(null)`, JavaScript's
`undefined`, …): read as "no OrganId"."""
_FIELDS = ("OrganId", "Timestamp")
_SHOWN = 60
# Year first, so day and month cannot be swapped: 2025-03-01T08:00:00, 2025/3/1 8:00,
# 2025-03-01 08:00:00.123+07:00, 2025-03-01T01:00:00Z.
_NEAR_TIMESTAMP = re.compile(
    r"(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})[ T]+"
    r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,]\d{1,9})?)?"
    r"\s*(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


def read_traces(trace_lists: Sequence[etree._Element]) -> tuple[list[TraceHeader], list[Problem]]:
    """Every TraceHeader of the package's TraceHeaderList(s), in document order, and the
    warnings about them. Never refuses: a relay's defect is no reason to refuse a package."""
    warnings: list[Problem] = []
    if len(trace_lists) > 1:
        warnings.append(
            _warning(
                element_path(trace_lists[1]),
                f"{len(trace_lists)} TraceHeaderList elements: a relay "
                "started a list of its own; their TraceHeaders are read in "
                "document order",
            )
        )
    traces = [
        _read(element, warnings)
        for trace_list in trace_lists
        for element in qcvn_children(trace_list, "TraceHeader")
    ]
    return traces, warnings


def _read(element: etree._Element, warnings: list[Problem]) -> TraceHeader:
    base = element_path(element)
    if (element.text or "").strip():
        warnings.append(
            _warning(base, f"TraceHeader holds text {_shown(element.text or '')!r}; ignored")
        )
    found: dict[str, list[etree._Element]] = {}
    for child in qcvn_children(element):
        found.setdefault(local_name(child), []).append(child)
    for name, elements in found.items():
        if name not in _FIELDS:
            warnings.append(
                _warning(element_path(elements[0]), f"{name} is not part of a TraceHeader; ignored")
            )
        elif len(elements) > 1:
            warnings.append(
                _warning(
                    element_path(elements[1]),
                    f"{name} occurs {len(elements)} times; the first is read",
                )
            )
    organ = _organ(found.get("OrganId", []), f"{base}/OrganId", warnings)
    at = _timestamp(found.get("Timestamp", []), f"{base}/Timestamp", warnings)
    return TraceHeader.model_validate({"OrganId": organ, "Timestamp": at})


def _organ(elements: list[etree._Element], path: str, warnings: list[Problem]) -> str | None:
    if not elements:
        warnings.append(
            _warning(path, "the TraceHeader has no OrganId: which organ wrote it is unknown")
        )
        return None
    text = _text(elements[0], path, warnings)
    if text is None:
        return None
    if not text:
        warnings.append(
            _warning(path, "OrganId is empty: which organ wrote this TraceHeader is unknown")
        )
        return None
    if text.lower() in NULL_TEXTS:
        warnings.append(
            _warning(
                path,
                f"OrganId is the text {text!r} (no value): which organ "
                "wrote this TraceHeader is unknown",
            )
        )
        return None
    if not is_valid_code(text):
        warnings.append(
            _warning(
                path,
                f"{_shown(text)!r} is not an identifier code "
                "(dot-separated letters and digits, at most 35); kept "
                "as written, attributed to no one",
            )
        )
    elif not is_standard_shape(text):
        warnings.append(
            Problem(
                NONSTANDARD_CODE,
                path,
                f"{text!r} is not of the standard form LLL.KK.JJ.XNN",
                "warning",
            )
        )
    return text


def _timestamp(
    elements: list[etree._Element], path: str, warnings: list[Problem]
) -> datetime | None:
    if not elements:
        warnings.append(_warning(path, "the TraceHeader has no Timestamp"))
        return None
    text = _text(elements[0], path, warnings)
    if not text:
        if text is not None:
            warnings.append(_warning(path, "Timestamp is empty"))
        return None
    try:
        return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=VIETNAM)
    except ValueError:
        pass
    read = near_timestamp(text)
    if read is None:
        warnings.append(
            _warning(path, f"{_shown(text)!r} is not a timestamp yyyy/MM/dd HH:mm:ss; ignored")
        )
        return None
    warnings.append(
        _warning(
            path,
            f"{_shown(text)!r} is not written yyyy/MM/dd HH:mm:ss; "
            f"read as {read.astimezone(VIETNAM):%Y/%m/%d %H:%M:%S} "
            "(Vietnam time)",
        )
    )
    return read


def near_timestamp(text: str) -> datetime | None:
    """A timestamp written in a near-standard way (year first; `-`, `/` or `.` between date
    parts; `T` or a space before the time; seconds, fractions and a zone optional), in
    Vietnam time when no zone is written; None when it is not one or is no real date."""
    match = _NEAR_TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    zone = match.group("zone")
    tz: tzinfo = VIETNAM
    if zone == "Z":
        tz = UTC
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime(
            int(match.group("y")),
            int(match.group("mo")),
            int(match.group("d")),
            int(match.group("h")),
            int(match.group("mi")),
            int(match.group("s") or 0),
            tzinfo=tz,
        )
    except ValueError:
        return None


def _text(element: etree._Element, path: str, warnings: list[Problem]) -> str | None:
    """The element's stripped text; None (with a warning) when it holds elements."""
    if qcvn_children(element):
        warnings.append(_warning(path, f"{local_name(element)} holds elements, not text; ignored"))
        return None
    return (element.text or "").strip()


def sender_trace(traces: Iterable[TraceHeader], sender: str) -> TraceHeader | None:
    """The sender's own TraceHeader: the first naming the sender (From/OrganId); failing
    that, the first TraceHeader when it names a valid organ (senders that write their
    system's code, as the SDK kit does). A TraceHeader without a readable OrganId is never
    the sender's: a relay wrote it, and which one is unknown."""
    listed = list(traces)
    for trace in listed:
        if trace.organ_id == sender:
            return trace
    first = listed[0] if listed else None
    if first is not None and first.organ_id and is_valid_code(first.organ_id):
        return first
    return None


def _warning(path: str, message: str) -> Problem:
    return Problem(MALFORMED, path, message, "warning")


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
