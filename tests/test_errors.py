"""The refusal catalogue (`gateway/errors.py`): every class complete, the tree drawn in the
module docstring matching the classes, leaves that differ from their category only in text."""

from __future__ import annotations

import dataclasses
import re
import string

import pytest

import gateway.errors as errors
import gateway.signatures
from gateway.errors import GatewayError, ParameterMissing, UnsupportedMediaType, ascii_safe


def _catalogue(base: type[GatewayError] = GatewayError) -> list[type[GatewayError]]:
    found: list[type[GatewayError]] = []
    for sub in base.__subclasses__():
        if sub.__module__ == errors.__name__:
            found += [sub, *_catalogue(sub)]
    return found


CATALOGUE = _catalogue()
LEAVES = [cls for cls in CATALOGUE if not _catalogue(cls)]
BY_NAME = {cls.__name__: cls for cls in CATALOGUE}


def test_the_catalogue_is_not_empty() -> None:
    assert len(LEAVES) > 40
    assert {
        "WrongCredentials",
        "DocumentNotFound",
        "ParameterMissing",
        "PackageNotEdxml",
        "SignatureRejected",
    } <= set(BY_NAME)


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.__name__)
def test_every_refusal_has_a_code_statuses_and_an_ascii_vietnamese_text(
    cls: type[GatewayError],
) -> None:
    assert re.fullmatch(r"[A-Z][A-Z0-9_]+", cls.code)
    assert isinstance(cls.http_status, int) and 400 <= cls.http_status <= 599
    assert re.fullmatch(r"[0-9]{2}", cls.vxp_code)
    assert cls.title
    assert cls.text_vi and cls.text_vi.strip() == cls.text_vi
    assert cls.text_vi.isascii() and ascii_safe(cls.text_vi) == cls.text_vi


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.__name__)
def test_a_text_names_only_fields_of_its_class(cls: type[GatewayError]) -> None:
    named = {name for _, name, _, _ in string.Formatter().parse(cls.text_vi) if name}
    assert named <= {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    "cls",
    [c for c in CATALOGUE if c.__bases__[0] is not GatewayError],
    ids=lambda cls: cls.__name__,
)
def test_a_leaf_answers_as_its_category_does(cls: type[GatewayError]) -> None:
    """Only the Vietnamese text (and the class) tells a leaf from its category: the code,
    the HTTP status, the /vxp ErrorCode and the problem title are the category's."""
    category = cls.__bases__[0]
    assert (cls.code, cls.http_status, cls.vxp_code, cls.title) == (
        category.code,
        category.http_status,
        category.vxp_code,
        category.title,
    )
    assert cls.response_headers is category.response_headers


def _tree() -> list[tuple[int, str, str]]:
    """(depth, class name, the text on its lines) for each class the docstring draws."""
    assert errors.__doc__
    rows: list[tuple[int, str, str]] = []
    for line in errors.__doc__.splitlines():
        drawn = re.match(r"^    ([ │]*)(?:[├└]─ )?([A-Z]\w+)\b(.*)$", line)
        if drawn and (drawn.group(2) in BY_NAME or drawn.group(2) == "GatewayError"):
            rows.append(
                (
                    len(drawn.group(1)) // 4 + (1 if "─" in line else 0),
                    drawn.group(2),
                    drawn.group(3),
                )
            )
        elif rows and re.match(r"^    [ │]+\"", line):
            depth, name, text = rows[-1]
            rows[-1] = (depth, name, text + line)
    return rows


def test_the_docstring_draws_every_class_once() -> None:
    drawn = [name for _, name, _ in _tree()]
    assert sorted(drawn) == sorted(["GatewayError", *BY_NAME])


def test_the_docstring_draws_each_class_under_its_category_with_its_text() -> None:
    parents: list[str] = []
    for depth, name, text in _tree():
        parents[depth:] = [name]
        if name == "GatewayError":
            continue
        cls = BY_NAME[name]
        assert parents[depth - 1] == cls.__bases__[0].__name__, name
        assert f'"{cls.text_vi}"' in text, name
        if "code" in vars(cls):  # a category: the line shows what it answers
            assert f"{cls.code} ({cls.http_status}, {cls.vxp_code})" in text, name


def test_error_desc_leads_with_the_text_of_the_leaf() -> None:
    assert errors.DocumentNotFound("no package x").error_desc == (
        "Khong tim thay van ban: no package x"
    )
    assert ParameterMissing("header XroadVnpt-docid is required", name="docid").error_desc == (
        "Thieu tham so docid: header XroadVnpt-docid is required"
    )
    refused = UnsupportedMediaType("no", kind="text/html", accepted="application/xml")
    assert refused.error_desc == "Sai Content-Type text/html, chi nhan application/xml: no"


def test_signature_rejected_is_the_catalogue_s_class_wherever_it_is_imported() -> None:
    assert gateway.signatures.SignatureRejected is errors.SignatureRejected
