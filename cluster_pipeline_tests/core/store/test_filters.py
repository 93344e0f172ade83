"""The filter language: its shape, its checks against a schema, and what Arrow keeps, against a
plain-Python reference of the documented semantics (MongoDB's rule for missing values)."""

from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_pipeline.core.errors import FilterError
from cluster_pipeline.core.store.filters import (
    MAX_DEPTH,
    Combination,
    Condition,
    Negation,
    filter_fields,
    filter_to_json,
    matching_rows,
    parse_filter,
    to_expression,
)

TABLE = pa.table(
    {
        "year": pa.array([2019, 2020, None, 2022, 2020, None], pa.int64()),
        "score": pa.array([0.1, 0.5, None, 0.9, 0.5, 0.3], pa.float64()),
        "category": pa.array(["World", "Sports", None, "World", "Business", "Sci/Tech"]),
        "flagged": pa.array([True, False, None, True, False, False]),
        "seen": pa.array(
            [datetime(2025, 1, day, tzinfo=UTC) for day in (1, 2, 3, 4, 5)] + [None], pa.timestamp("us", tz="UTC")
        ),
    }
)


def rows(data) -> list[int]:
    return matching_rows(TABLE, to_expression(parse_filter(data), TABLE.schema, "the table")).to_pylist()


def test_conditions_operators_and_aliases():
    assert rows({"field": "year", "operator": ">", "value": 2019.5}) == [1, 3, 4]
    assert rows({"field": "year", "operator": "in", "value": [2019, 2022]}) == [0, 3]
    assert rows({"field": "score", "operator": "lte", "value": 0.3}) == [0, 5]
    assert rows({"field": "category", "operator": "contains", "value": "orl"}) == [0, 3]
    assert rows({"field": "flagged", "operator": "=", "value": True}) == [0, 3]
    assert rows({"field": "seen", "operator": ">=", "value": "2025-01-04"}) == [3, 4]
    assert rows({"field": "seen", "operator": "<", "value": "2025-01-02T00:00:00Z"}) == [0]
    assert rows({"field": "category", "operator": "is_null"}) == [2]
    assert rows({"field": "category", "operator": "is null", "value": False}) == [0, 1, 3, 4, 5]


def test_missing_values_follow_mongodb():
    """A missing value satisfies != and not_in, nothing else; so NOT(=) is != exactly."""
    assert rows({"field": "category", "operator": "!=", "value": "World"}) == [1, 2, 4, 5]
    assert rows({"NOT": {"field": "category", "operator": "eq", "value": "World"}}) == [1, 2, 4, 5]
    assert rows({"field": "year", "operator": "not_in", "value": [2020]}) == [0, 2, 3, 5]
    assert rows({"field": "year", "operator": "<", "value": 3000}) == [0, 1, 3, 4]


def test_and_or_not_nest():
    tree = {
        "AND": [
            {
                "OR": [
                    {"field": "category", "operator": "=", "value": "World"},
                    {"field": "score", "operator": ">", "value": 0.4},
                ]
            },
            {"NOT": {"field": "year", "operator": "=", "value": 2022}},
        ]
    }
    assert rows(tree) == [0, 1, 4]
    assert rows({"or": [{"field": "year", "operator": "is_null"}]}) == [2, 5]  # keys in any case


def test_canonical_json_and_fields_round_trip():
    tree = parse_filter(
        {
            "AND": [
                {"field": "year", "operator": ">=", "value": 2020},
                {"NOT": {"field": "category", "operator": "nin", "value": ["x"]}},
            ]
        }
    )
    assert filter_to_json(tree) == {
        "AND": [
            {"field": "year", "operator": "gte", "value": 2020},
            {"NOT": {"field": "category", "operator": "not_in", "value": ["x"]}},
        ]
    }
    assert parse_filter(filter_to_json(tree)) == tree and filter_fields(tree) == {"year", "category"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"field": "categry", "operator": "=", "value": "x"}, r"unknown field 'categry' \(did you mean 'category'\?\)"),
        ({"field": "category", "operator": "=", "value": 3}, "'category' holds text values, so eq needs a string"),
        ({"field": "year", "operator": "=", "value": "2020"}, "'year' holds integer values, so eq needs a number"),
        ({"field": "year", "operator": "=", "value": True}, "so eq needs a number; got true"),
        ({"field": "seen", "operator": ">", "value": "yesterday"}, "so gt needs an ISO 8601 time"),
        ({"field": "year", "operator": "contains", "value": "2"}, "contains needs a text field"),
        ({"field": "flagged", "operator": "<", "value": True}, "lt needs numbers, text or timestamps"),
        ({"field": "category", "operator": "like", "value": "W%"}, "unknown operator 'like'"),
        ({"field": "category", "operator": "in", "value": "World"}, "in needs a non-empty list"),
        ({"field": "category", "operator": "=", "value": ["World"]}, "use in / not_in for a list"),
        ({"field": "category", "operator": "="}, "needs a value"),
        ({"field": "category", "operator": "is_null", "value": "yes"}, "is_null takes true"),
        ({"NOT": [{"field": "year", "operator": "is_null"}]}, "NOT takes one filter, not a list"),
        ({"AND": []}, "AND takes a non-empty list"),
        ({"AND": [], "OR": []}, "exactly one of AND, OR, NOT"),
        ({"field": "year", "op": "="}, "unknown key"),
        ("{not json", "is not valid JSON"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_filters_name_the_problem_and_the_fix(data, message):
    with pytest.raises(FilterError, match=message):
        rows(data)


def test_errors_say_where_in_the_tree():
    with pytest.raises(FilterError, match=r"filters\.AND\[1\]\.NOT: unknown operator"):
        parse_filter(
            {"AND": [{"field": "a", "operator": "=", "value": 1}, {"NOT": {"field": "a", "operator": "~"}}]}, "filters"
        )


# --- property: Arrow keeps exactly what the documented semantics keep ---------------------------

VALUES = {
    "year": st.sampled_from([2019, 2020, 2021, 2022]),
    "score": st.sampled_from([0.1, 0.3, 0.5, 0.9]),
    "category": st.sampled_from(["World", "Sports", "Business", "or"]),
}
OPERATORS = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "is_null"]


@st.composite
def conditions(draw):
    field = draw(st.sampled_from(sorted(VALUES)))
    operator = draw(st.sampled_from(OPERATORS + (["contains"] if field == "category" else [])))
    if operator == "is_null":
        return Condition(field, operator, draw(st.booleans()))
    if operator in ("in", "not_in"):
        return Condition(field, operator, tuple(draw(st.lists(VALUES[field], min_size=1, max_size=3))))
    return Condition(field, operator, draw(VALUES[field]))


filters = st.recursive(
    conditions(),
    lambda children: st.one_of(
        st.builds(Negation, children),
        st.builds(Combination, st.sampled_from(["AND", "OR"]), st.lists(children, min_size=1, max_size=3).map(tuple)),
    ),
    max_leaves=8,
)


def reference(node, row: dict) -> bool:
    if isinstance(node, Negation):
        return not reference(node.filter, row)
    if isinstance(node, Combination):
        outcomes = [reference(child, row) for child in node.filters]
        return all(outcomes) if node.operator == "AND" else any(outcomes)
    value = row[node.field]
    if node.operator == "is_null":
        return (value is None) == node.value
    if value is None:
        return node.operator in ("ne", "not_in")
    compare = {
        "eq": lambda: value == node.value,
        "ne": lambda: value != node.value,
        "lt": lambda: value < node.value,
        "lte": lambda: value <= node.value,
        "gt": lambda: value > node.value,
        "gte": lambda: value >= node.value,
        "in": lambda: value in node.value,
        "not_in": lambda: value not in node.value,
        "contains": lambda: node.value in value,
    }
    return compare[node.operator]()


@settings(max_examples=300, deadline=None)
@given(filters)
def test_arrow_keeps_what_the_reference_keeps(tree):
    expected = [i for i, row in enumerate(TABLE.to_pylist()) if reference(tree, row)]
    assert matching_rows(TABLE, to_expression(tree, TABLE.schema)).to_pylist() == expected
    assert parse_filter(filter_to_json(tree)) == tree


def negations(levels: int) -> dict:
    tree: dict = {"field": "year", "operator": "eq", "value": 2020}
    for _ in range(levels):
        tree = {"NOT": tree}
    return tree


def test_a_filter_deeper_than_the_limit_is_refused_when_parsed():
    """Issue 26, item 5: 300 NOTs ended in a pydantic serialization traceback, 5,000 in RecursionError."""
    assert rows(negations(MAX_DEPTH)) == rows({"field": "year", "operator": "eq", "value": 2020})
    for levels in (MAX_DEPTH + 1, 300, 5000):
        for data in (
            negations(levels),
            '{"NOT": ' * levels + '{"field": "a", "operator": "eq", "value": 1}' + "}" * levels,
        ):
            with pytest.raises(FilterError) as refused:
                parse_filter(data, "filters")
            message = str(refused.value)
            assert (
                message.startswith(f"filters nests AND / OR / NOT more than {MAX_DEPTH} levels") and "\n" not in message
            )
    wide = {"AND": [negations(MAX_DEPTH - 1)] * 2000}  # width has no limit
    assert parse_filter(wide) == Combination("AND", (parse_filter(negations(MAX_DEPTH - 1)),) * 2000)


def deep_json(depth: int) -> st.SearchStrategy:
    """Filter-like JSON of at most ``depth`` levels, well-formed or not."""
    leaf = st.one_of(
        st.fixed_dictionaries(
            {
                "field": st.sampled_from(sorted(VALUES)),
                "operator": st.sampled_from(OPERATORS),
                "value": st.one_of(st.integers(), st.text(max_size=3), st.none()),
            }
        ),  # fmt: skip
        st.integers(),
        st.text(max_size=3),
        st.none(),
    )
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.dictionaries(
                st.sampled_from(["AND", "OR", "NOT", "and", "field", "x"]),
                st.one_of(children, st.lists(children, max_size=3)),
                min_size=1,
                max_size=2,
            )  # fmt: skip
        ),
        max_leaves=depth,
    )


@settings(max_examples=100, deadline=None)
@given(deep_json(40), st.integers(min_value=0, max_value=60))
def test_any_filter_tree_parses_or_is_refused_in_one_line(tree, extra_levels):
    """A property (issue 26): whatever the tree's shape, depth and width, the parser either accepts it,
    in a form that round-trips, or refuses it with one FilterError line — never another exception."""
    for _ in range(extra_levels):
        tree = {"NOT": tree}
    try:
        parsed = parse_filter(tree)
    except FilterError as refused:
        assert "\n" not in str(refused)
        return
    assert parse_filter(filter_to_json(parsed)) == parsed
