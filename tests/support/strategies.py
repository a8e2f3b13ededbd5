"""Hypothesis strategies shared by the fuzzers: text that has broken parsers, databases and
header writers before, in the shapes each transport can carry.

Generated text alone rarely hits these (a NUL, a lone surrogate, a 100 000-character value,
a right-to-left override): every strategy here mixes a list of known-bad values with
generated ones, so a small CI budget still tries each of them.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

EDGE_TEXT = [
    "a\x00b",
    "\x00",
    "x" * 4096,
    "",
    " ",
    "\t",
    "%00",
    "%",
    "%zz",
    "\\",
    "/",
    "../../etc/passwd",
    "..",
    "null",
    "None",
    "[]",
    "{}",
    "true",
    "0",
    "-1",
    "00",
    "1e309",
    "NaN",
    "inf",
    "-inf",
    "9" * 40,
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "31/12/2999",
    "1970/01/01 00:00:00",
    "Đồng Tháp",
    "e\u0301" * 200,
    "\u202eH53",
    "\ufeff",
    "\uffff",
    "\U0001f600",
    "\u0085",
    "\u2028",
    "' OR '1'='1",
    "<script>",
    "]]>",
    "#.H53",
    "*",
    "*.*.13.H53",
    "A." * 40,
    "000.00.01.H53",
    "000.00.02.H53",
]
"""Values that each broke something somewhere: encodings, number and date parsers, SQL,
path handling, code patterns, and sizes just past what a field may hold."""

SURROGATES = ["\ud800", "a\udfffb", "\udc00\udbff"]
"""Lone UTF-16 surrogates (the last pair in the wrong order): JSON's `"\\ud800"` decodes to
one, and no UTF-8 can encode one."""


def url_text() -> st.SearchStrategy[str]:
    """Text a URL (path segment or query value) can carry: no surrogates, since a URL is
    UTF-8 percent-encoded and a surrogate has no UTF-8."""
    return st.one_of(
        st.sampled_from(EDGE_TEXT),
        st.sampled_from(EDGE_TEXT),
        st.text(st.characters(codec="utf-8"), max_size=40),
        st.integers(min_value=1, max_value=4000).map(lambda n: "Ư" * n),
    )


def json_text() -> st.SearchStrategy[str]:
    """Text a JSON body can carry: everything a URL can, lone surrogates too, and values far
    over any field's limit."""
    return st.one_of(
        url_text(),
        st.sampled_from(SURROGATES),
        st.integers(min_value=4000, max_value=200_000).map(lambda n: "x" * n),
    )


def path_text() -> st.SearchStrategy[str]:
    """`url_text()` for a path segment: nothing that names another route instead (empty, a
    `/`, a dot segment, or `?` and `#`, which the client does not escape in a path), which
    would test that route under this one's name."""
    return url_text().filter(
        lambda text: text.strip() not in ("", ".", "..") and not set(text) & set("/?#")
    )


@st.composite
def mutated_json(draw: st.DrawFn, value: Any) -> Any:
    """`value` with some of its strings replaced by `json_text()`; structure kept, so the
    request still reaches the code behind the body's schema."""
    if isinstance(value, str):
        return draw(json_text()) if draw(st.booleans()) else value
    if isinstance(value, list):
        return [draw(mutated_json(item)) for item in value]
    if isinstance(value, dict):
        return {key: draw(mutated_json(item)) for key, item in value.items()}
    return value


def has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
