"""Rows of an answer encode as JSON objects, exactly as a dict per row would."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from server.http.serialize import encode, json_column, json_object, json_rows

VALUES = st.one_of(st.none(), st.integers(-2**64, 2**64), st.floats(), st.text(max_size=8),
                   st.dates(), st.booleans())


@given(names=st.lists(st.text(max_size=6), max_size=5),
       rows=st.integers(0, 6), data=st.data())
def test_rows_encode_as_a_dict_per_row(names: list[str], rows: int, data: Any) -> None:
    columns = tuple(data.draw(st.lists(VALUES, min_size=rows, max_size=rows)) for _ in names)
    found = encode(json_rows(tuple(names), columns))
    converted = [json_column(list(column)) for column in columns]
    expected = [dict(zip(names, values, strict=True))
                for values in zip(*converted, strict=True)] if names else []
    assert found == encode(expected)


@given(names=st.lists(st.text(max_size=6), min_size=1, max_size=5),
       rows=st.integers(0, 3), data=st.data())
def test_an_object_is_the_first_row_or_nulls(names: list[str], rows: int, data: Any) -> None:
    values = VALUES | st.datetimes() | st.decimals(allow_nan=False, places=3) | st.uuids()
    columns = tuple(data.draw(st.lists(values, min_size=rows, max_size=rows)) for _ in names)
    expected = encode(json_rows(tuple(names), columns)[0]) if rows else \
        encode(dict.fromkeys(names))
    assert encode(json_object(tuple(names), columns)) == expected


def test_names_that_are_not_identifiers_and_repeated_names() -> None:
    names = ("user.country", "__init__", "day", "n")
    body = encode(json_rows(names, (["fr"], ["x"], [dt.date(2026, 1, 2)], [2.0])))
    assert json.loads(body) == [{"user.country": "fr", "__init__": "x", "day": "2026-01-02",
                                 "n": 2}]
    assert body.index(b"user.country") < body.index(b"__init__") < body.index(b"day")
    assert encode(json_rows(("a", "a"), ([1], [2]))) == b'[{"a":2}]'
    assert encode(json_rows((), ())) == b"[]"
    assert json.loads(encode(json_rows(("a\"b", "c\\"), ([1], [2])))) == [{"a\"b": 1, "c\\": 2}]
