"""Filters: which documents a configuration clusters, and which executions a history query lists.

One language serves both (the README's "Choosing what to cluster" shows it): a JSON tree of ``AND``
/ ``OR`` / ``NOT`` over conditions ``{"field": …, "operator": …, "value": …}``. :func:`parse_filter`
checks the shape; :func:`to_expression` checks the tree against the fields it will see and builds
one pyarrow compute expression: no user text is ever executed. Missing values follow MongoDB's rule
(the store behind Mixpeek's filters): a document without a value satisfies no comparison but ``ne``
and ``not_in``, so ``NOT (category = "World")`` is exactly ``category != "World"``.
"""

from __future__ import annotations

import difflib
import functools
import json
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import and_, or_
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from cluster_pipeline.core.errors import FilterError

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "is_null")
ALIASES = {
    "=": "eq",
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    "<=": "lte",
    ">": "gt",
    ">=": "gte",
    "nin": "not_in",
    "not in": "not_in",
    "is null": "is_null",
}
COMBINATIONS = ("AND", "OR")
MAX_DEPTH = 32  # levels of AND / OR / NOT: deeper trees are refused when parsed (they would exhaust the stack)
ORDERED = ("lt", "lte", "gt", "gte")
_COMPARE = {"eq": pc.equal, "ne": pc.not_equal, "lt": pc.less, "lte": pc.less_equal, "gt": pc.greater,
            "gte": pc.greater_equal}  # fmt: skip


@dataclass(frozen=True)
class Condition:
    """``field operator value``; ``value`` is a list for ``in``/``not_in``, a bool for ``is_null``."""

    field: str
    operator: str
    value: Any = None


@dataclass(frozen=True)
class Combination:
    """All (``AND``) or any (``OR``) of several filters."""

    operator: Literal["AND", "OR"]
    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class Negation:
    """``NOT`` one filter."""

    filter: Filter


Filter = Condition | Combination | Negation


def parse_filter(data: Any, where: str = "Filter") -> Filter:
    """The filter tree of ``data`` (a JSON object, or its text); FilterError names the part at fault,
    ``where`` the filter (its path inside a larger document)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as error:
            raise FilterError(f"{where} is not valid JSON ({error.msg} at character {error.pos}).") from None
        except RecursionError:
            raise _too_deep(where) from None
    return _parse(data, where, 0)


def _too_deep(where: str) -> FilterError:
    return FilterError(
        f"{where} nests AND / OR / NOT more than {MAX_DEPTH} levels deep; flatten it: one AND or OR takes any "
        "number of filters, and NOT of NOT is the filter itself."
    )


def _parse(data: Any, where: str, depth: int) -> Filter:
    if depth > MAX_DEPTH:
        raise _too_deep(where.partition(".")[0])
    if not isinstance(data, dict):
        raise FilterError(
            f'{where} must be a JSON object: a condition {{"field": …, "operator": …, "value": …}} or '
            f'{{"AND": [...]}}, {{"OR": [...]}}, {{"NOT": {{...}}}}; got {json.dumps(data, default=str)}.'
        )
    if "field" in data:
        return _condition(data, where)
    keys = [key.upper() if isinstance(key, str) else key for key in data]
    if len(keys) != 1 or keys[0] not in (*COMBINATIONS, "NOT"):
        raise FilterError(
            f"{where} has keys {sorted(map(str, data))}: a filter is one condition (field, operator, value) or "
            "exactly one of AND, OR, NOT."
        )
    kind, children = keys[0], next(iter(data.values()))
    if kind == "NOT":
        if isinstance(children, list):
            raise FilterError(
                f"{where}.NOT takes one filter, not a list; to negate several, wrap them: "
                '{"NOT": {"OR": [...]}} (none of them) or {"NOT": {"AND": [...]}} (not all of them).'
            )
        return Negation(_parse(children, f"{where}.NOT", depth + 1))
    if not isinstance(children, list) or not children:
        raise FilterError(f"{where}.{kind} takes a non-empty list of filters.")
    parsed = tuple(_parse(child, f"{where}.{kind}[{i}]", depth + 1) for i, child in enumerate(children))
    return Combination("AND" if kind == "AND" else "OR", parsed)


def _condition(data: dict[str, Any], where: str) -> Condition:
    extra = sorted(set(data) - {"field", "operator", "value"})
    if extra:
        raise FilterError(f"{where}: unknown key(s) {', '.join(extra)}; a condition has field, operator and value.")
    field, operator = data["field"], data.get("operator")
    if not isinstance(field, str) or not field:
        raise FilterError(f"{where}: field must be a column name, got {field!r}.")
    name = ALIASES.get(operator, operator) if isinstance(operator, str) else operator
    if name not in OPERATORS:
        raise FilterError(
            f"{where}: unknown operator {operator!r} for {field!r}; use one of {', '.join(OPERATORS)} "
            "(or =, !=, <, <=, >, >=)."
        )
    if name == "is_null":
        value = data.get("value", True)
        if not isinstance(value, bool):
            raise FilterError(f"{where}: is_null takes true (is null) or false (is not null), got {value!r}.")
        return Condition(field, name, value)
    if "value" not in data:
        raise FilterError(f"{where}: {field!r} {name} needs a value.")
    value = data["value"]
    if name in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise FilterError(f"{where}: {name} needs a non-empty list of values, got {json.dumps(value)}.")
        return Condition(field, name, tuple(value))
    if isinstance(value, list | dict) or value is None:
        raise FilterError(
            f"{where}: {field!r} {name} needs one value, got {json.dumps(value)}"
            + ("; use in / not_in for a list." if isinstance(value, list) else "; use is_null for missing values.")
        )
    return Condition(field, name, value)


def filter_to_json(node: Filter) -> dict[str, Any]:
    """The canonical JSON form (what configurations and results store)."""
    if isinstance(node, Condition):
        value = list(node.value) if isinstance(node.value, tuple) else node.value
        return {"field": node.field, "operator": node.operator, "value": value}
    if isinstance(node, Negation):
        return {"NOT": filter_to_json(node.filter)}
    return {node.operator: [filter_to_json(child) for child in node.filters]}


def filter_fields(node: Filter) -> set[str]:
    """Every field the filter reads."""
    if isinstance(node, Condition):
        return {node.field}
    if isinstance(node, Negation):
        return filter_fields(node.filter)
    return set().union(*(filter_fields(child) for child in node.filters))


def to_expression(node: Filter, schema: pa.Schema, subject: str = "the data") -> pc.Expression:
    """A pyarrow compute expression for ``node`` over tables of ``schema``, after checking every
    condition against its field's type. ``subject`` names what is filtered in messages
    (``"the collection 'news'"``)."""
    if isinstance(node, Negation):
        return ~to_expression(node.filter, schema, subject)
    if isinstance(node, Combination):
        parts = [to_expression(child, schema, subject) for child in node.filters]
        return functools.reduce(and_ if node.operator == "AND" else or_, parts)
    return _condition_expression(node, schema, subject)


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    return "other"


def _condition_expression(condition: Condition, schema: pa.Schema, subject: str) -> pc.Expression:
    name, operator = condition.field, condition.operator
    if name not in schema.names:
        close = difflib.get_close_matches(name, schema.names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise FilterError(
            f"Filter: unknown field {name!r}{hint}; the fields of {subject} are {', '.join(sorted(schema.names))}."
        )
    arrow_type = schema.field(name).type
    field = pc.field(name)
    if operator == "is_null":
        return field.is_null() if condition.value else ~field.is_null()
    kind = _kind(arrow_type)
    described = f"{name!r} ({kind if kind != 'other' else arrow_type})"
    if kind == "other":
        raise FilterError(f"Filter: {described} can only be tested with is_null.")
    if operator == "contains":
        if kind != "text":
            raise FilterError(f"Filter: contains needs a text field; {described} is not one.")
        if not isinstance(condition.value, str):
            raise FilterError(f"Filter: {name!r} contains needs a string, got {condition.value!r}.")
        return pc.coalesce(pc.match_substring(field, condition.value), pa.scalar(False))
    if operator in ORDERED and kind == "boolean":
        raise FilterError(f"Filter: {operator} needs numbers, text or timestamps; {described} is true/false.")
    if operator in ("in", "not_in"):
        values = [_scalar_value(v, kind, arrow_type, name, operator) for v in condition.value]
        if kind == "integer" and any(isinstance(v, float) for v in values):
            field, arrow_type = field.cast(pa.float64()), pa.float64()
        found = pc.coalesce(pc.is_in(field, value_set=pa.array(values, arrow_type)), pa.scalar(False))
        return found if operator == "in" else ~found
    value = _scalar_value(condition.value, kind, arrow_type, name, operator)
    scalar = pa.scalar(value, arrow_type) if kind in ("timestamp", "text", "boolean") else pa.scalar(value)
    compared = _COMPARE[operator](field, scalar)
    return pc.coalesce(compared, pa.scalar(operator == "ne"))


_EXPECTED = {
    "integer": "a number",
    "number": "a number",
    "text": 'a string (e.g. "World")',
    "boolean": "true or false",
    "timestamp": 'an ISO 8601 time (e.g. "2025-11-13T13:20:40Z")',
}


def _scalar_value(value: Any, kind: str, arrow_type: pa.DataType, name: str, operator: str) -> Any:
    """``value`` as the Python value Arrow compares with a field of ``kind``; FilterError if it is not one."""
    if kind in ("integer", "number") and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if kind == "integer" and isinstance(value, float) and value.is_integer() else value
    if (kind == "text" and isinstance(value, str)) or (kind == "boolean" and isinstance(value, bool)):
        return value
    if kind == "timestamp" and isinstance(value, str):
        with suppress(ValueError):
            parsed = datetime.fromisoformat(value)  # Python 3.11: a date alone, 'Z', basic and week forms too
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            if pa.types.is_date(arrow_type):
                return parsed.date()
            return parsed if arrow_type.tz else parsed.astimezone(UTC).replace(tzinfo=None)
    raise FilterError(
        f"Filter: {name!r} holds {kind} values, so {operator} needs {_EXPECTED[kind]}; got {json.dumps(value)}."
    )


def matching_rows(table: pa.Table, expression: pc.Expression) -> pa.Array:
    """Positions (int64) of the rows of ``table`` the expression keeps, in order."""
    indexed = table.append_column("__row__", pa.array(range(table.num_rows), pa.int64()))
    return indexed.filter(expression).column("__row__").combine_chunks()
