"""From the envelope document to the typed model, reporting every problem with its path.

The walk is generic: a model's fields name their elements (aliases), so reading is the same
for every part of the package. Each leaf is converted on its own, so a bad value is reported
at its own element (`MessageHeader/OtherInfo/Priority`) and the rest is still read. Children
may come in any order; empty optional elements count as absent (real packages carry
`<ResponseFor><OrganId></OrganId>…`). A bad value in a field marked lenient in the model
(`model.LENIENT`: DueDate, Priority, …) is a warning and the field is left out.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar

from lxml import etree
from pydantic import BaseModel, ValidationError

from gateway.edxml.model import DATE_FORMAT, TIMESTAMP_FORMAT, VIETNAM, field_type, is_lenient
from gateway.edxml.namespaces import QCVN_NS
from gateway.edxml.paths import element_path, local_name
from gateway.errors import Problem

M = TypeVar("M", bound=BaseModel)


def qcvn_children(element: etree._Element, name: str | None = None) -> list[etree._Element]:
    return [
        c
        for c in element
        if isinstance(c.tag, str)
        and etree.QName(c).namespace == QCVN_NS
        and (name is None or local_name(c) == name)
    ]


def qcvn_child(element: etree._Element | None, name: str) -> etree._Element | None:
    if element is None:
        return None
    found = qcvn_children(element, name)
    return found[0] if found else None


INVALID = object()
"""What `_value` returns for an element whose problem has already been reported."""
IGNORED = "EDXML_VALUE_IGNORED"
"""Warning code: a lenient field's value could not be read and was left out."""


class ModelReader:
    """Reads elements into models, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def problem(self, code: str, path: str, message: str) -> None:
        if not any(p.path == path for p in self.problems):
            self.problems.append(Problem(code, path, message))

    def warn(self, code: str, path: str, message: str) -> None:
        if not any(p.path == path and p.code == code for p in self.warnings):
            self.warnings.append(Problem(code, path, message, "warning"))

    def read(self, element: etree._Element, model: type[M]) -> M | None:
        """The model, or None when a required part is missing or invalid (reported)."""
        base = element_path(element)
        grouped: dict[str, list[etree._Element]] = {}
        for child in qcvn_children(element):
            grouped.setdefault(local_name(child), []).append(child)
        values: dict[str, Any] = {}
        failed = False
        for name, info in model.model_fields.items():
            alias = info.alias or name
            found = grouped.get(alias, [])
            item_type, is_list = field_type(info.annotation)
            wrapper = (
                (info.json_schema_extra or {}).get("wrapped")
                if isinstance(info.json_schema_extra, dict)
                else None
            )
            if is_list:
                if wrapper and len(found) > 1:
                    self.problem(
                        "EDXML_DUPLICATE_ELEMENT",
                        element_path(found[1]),
                        f"{alias} occurs more than once",
                    )
                items = qcvn_children(found[0], str(wrapper)) if wrapper and found else found
                converted = [self._value(item, item_type) for item in items]
                values[name] = [v for v in converted if v is not None and v is not INVALID]
                failed |= any(v is INVALID for v in converted)
                if not items and any(getattr(m, "min_length", 0) for m in info.metadata):
                    self.problem(
                        "EDXML_REQUIRED",
                        f"{base}/{alias}",
                        f"at least one {wrapper or alias} is required",
                    )
                    failed = True
                continue
            if len(found) > 1:
                self.problem(
                    "EDXML_DUPLICATE_ELEMENT",
                    element_path(found[1]),
                    f"{alias} must occur at most once",
                )
            value = (
                self._value(found[0], item_type, lenient=is_lenient(info.json_schema_extra))
                if found
                else None
            )
            if value is INVALID:
                failed = True
                continue
            if value is None:
                if info.is_required():
                    path = element_path(found[0]) if found else f"{base}/{alias}"
                    self.problem(
                        "EDXML_REQUIRED",
                        path,
                        f"{alias} is required" + (" and must not be empty" if found else ""),
                    )
                    failed = True
                continue
            values[name] = value
        if failed:
            return None
        try:
            return model.model_validate(values)
        except ValidationError as error:
            refused = False
            for detail in error.errors():
                name = str(detail["loc"][0]) if detail["loc"] else ""
                field = model.model_fields.get(name)
                alias = (field.alias if field else None) or ".".join(map(str, detail["loc"]))
                if field is not None and is_lenient(field.json_schema_extra):
                    self.warn(
                        IGNORED,
                        f"{base}/{alias}",
                        f"{values.get(name)!r} is out of range ({detail['msg']}); the "
                        "value is ignored",
                    )
                    values.pop(name, None)
                else:
                    self.problem("EDXML_VALUE", f"{base}/{alias}", detail["msg"])
                    refused = True
            if refused:
                return None
            return model.model_validate(values)  # only lenient values were out of range

    def _value(self, element: etree._Element, kind: type, *, lenient: bool = False) -> Any:
        """The converted value, None when empty (or, for a lenient field, unreadable: a
        warning says so), INVALID when a problem was reported."""
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            read = self.read(element, kind)
            return INVALID if read is None else read
        if qcvn_children(element):
            self.problem(
                "EDXML_VALUE",
                element_path(element),
                f"{local_name(element)} holds text, not elements",
            )
            return INVALID
        text = (element.text or "").strip()
        if not text:
            return None
        try:
            return convert(text, kind)
        except ValueError as error:
            if lenient:
                self.warn(
                    IGNORED,
                    element_path(element),
                    f"{text[:60]!r} is not {error}; the value is ignored (nothing is routed on it)",
                )
                return None
            self.problem("EDXML_VALUE", element_path(element), f"{text[:60]!r} is not {error}")
            return INVALID


def convert(text: str, kind: type) -> Any:
    """An edXML text value as `kind`; ValueError says what was expected."""
    if kind is str:
        return text
    if kind is date:
        try:
            return datetime.strptime(text, DATE_FORMAT).date()
        except ValueError:
            raise ValueError("a date yyyy/MM/dd") from None
    if kind is datetime:
        try:
            return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=VIETNAM)
        except ValueError:
            raise ValueError("a timestamp yyyy/MM/dd HH:mm:ss") from None
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise ValueError("true or false")
    if isinstance(kind, type) and issubclass(kind, Enum):
        try:
            return kind(int(text)) if issubclass(kind, int) else kind(text)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in kind)
            raise ValueError(f"one of {allowed}") from None
    if kind is int:
        if not text.isascii() or not text.isdigit():
            raise ValueError("a non-negative whole number")
        return int(text)
    raise TypeError(f"no conversion to {kind!r}")
