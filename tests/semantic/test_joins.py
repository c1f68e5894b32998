"""Joins in the model: the paths a source reaches, and the located errors for every way a join
can go wrong (fan-out, a key that is not the primary key, a join to itself, cycles, unknown
sources, columns and paths), checked offline and against the columns ClickHouse reports."""

from __future__ import annotations

import textwrap

import pytest

from engine.model.compiler import measure_expressions
from engine.model.expressions import check_expressions
from semantic import ModelError, load_model_text
from semantic.joins import dimension_names, join_paths

STAR = """\
sources:
  teams:
    table: d.teams
    primary_key: id
    dimensions: {name: {}}
  users:
    table: d.users
    primary_key: id
    joins:
      team: {source: teams, keys: {team_id: id}}
    dimensions: {country: {}}
  facts:
    table: d.facts
    time: ts
    joins:
      user: {source: users, keys: {user_id: id}}
      referrer: {source: users, keys: {referrer_id: id}}
    measures:
      n: {agg: count}
      score: {agg: sum, column: user.score}
    rollups:
      r: {dimensions: [user.team.name, referrer.country], grain: day, measures: [n]}
"""

COLUMNS = {
    "teams": {"id": "UInt32", "name": "String"},
    "users": {"id": "String", "country": "String", "team_id": "UInt32", "score": "Int64"},
    "facts": {"ts": "DateTime", "user_id": "String", "referrer_id": "String"},
}


def issues(text: str) -> list[str]:
    with pytest.raises(ModelError) as info:
        load_model_text(textwrap.dedent(text), "test.yaml")
    return [issue.render() for issue in info.value.issues]


def test_paths_reach_two_hops_and_both_roles() -> None:
    model = load_model_text(STAR, "test.yaml")
    facts = model.source("facts")
    assert facts is not None
    # the join keys are dimensions of their source too
    assert dimension_names(model, facts) == [
        "user_id", "referrer_id", "user.country", "user.team_id", "referrer.country",
        "referrer.team_id", "user.team.name", "referrer.team.name"]
    assert check_expressions(model, COLUMNS) == []


def test_fan_out_relationships_are_refused() -> None:
    assert issues(STAR.replace("{source: users, keys: {user_id: id}}",
                               "{source: users, keys: {user_id: id}, "
                               "relationship: one_to_many}")) == [
        "test.yaml:16:64: error: join 'user': relationship 'one_to_many' would repeat each "
        "row of this source once per matching row and multiply its measures; join from the "
        "source with many rows to the one with one row per key (many_to_one), and ask for the "
        "other source's measures from that source [fan-out]"]


def test_a_join_must_use_the_whole_primary_key_of_a_source_that_has_one() -> None:
    assert issues(STAR.replace("{team_id: id}", "{team_id: name}")) == [
        "test.yaml:10:35: error: join 'team' of source 'users' must match source 'teams' by its "
        "whole primary key (id), got name; a join by part of a key could match several rows "
        "and multiply measures [join-not-by-key]"]
    assert issues(STAR.replace("    primary_key: id\n    dimensions: {name: {}}",
                               "    dimensions: {name: {}}")) == [
        "test.yaml:9:22: error: join 'team' of source 'users': source 'teams' declares no "
        "primary_key, so nothing says one row matches each key; add primary_key: <its key "
        "column(s)> to 'teams' [no-primary-key]"]


def test_joins_to_itself_and_cycles_are_refused() -> None:
    found = issues(STAR.replace("    dimensions: {name: {}}",
                                "    joins: {back: {source: facts, keys: {id: ts}}, "
                                "me: {source: teams, keys: {id: id}}}\n"
                                "    dimensions: {name: {}}"))
    assert any("joins the source to itself" in line and "[join-cycle]" in line
               for line in found), found
    assert any("joins form a cycle" in line for line in found) or any(
        "declares no primary_key" in line for line in found), found


def test_unknown_sources_paths_and_members_say_what_is_close() -> None:
    found = issues(STAR.replace("source: teams", "source: team")
                   .replace("referrer.country", "referer.country"))
    assert "test.yaml:10:22: error: source 'team' is not defined in the model; did you mean " \
        "'teams'? [unknown-source]" in found
    assert "test.yaml:22:40: error: 'referer.country': 'referer' is not a join of source " \
        "'facts'; did you mean 'referrer'? [unknown-dimension]" in found
    found = issues(STAR.replace("referrer.country", "referrer.contry"))
    assert found == ["test.yaml:22:40: error: dimension 'referrer.contry' is not defined in "
                     "source 'facts'; did you mean 'referrer.country'? [unknown-dimension]"]


def test_a_join_named_like_a_member_is_ambiguous() -> None:
    found = issues(STAR.replace("      n: {agg: count}", "      user: {agg: count}")
                   .replace("measures: [n]", "measures: [user]"))
    assert any("[ambiguous-join]" in line for line in found), found


def test_key_columns_and_joined_columns_are_checked_against_the_tables() -> None:
    model = load_model_text(STAR.replace("user.score", "user.scor"), "test.yaml")
    columns = {**COLUMNS, "facts": {"ts": "DateTime", "user_id": "UInt64",
                                    "referrer_id": "String"}}
    rendered = [i.render() for i in check_expressions(model, columns)]
    assert any("key user_id (UInt64) cannot match users.id (String)" in line
               and "[key-type-mismatch]" in line for line in rendered), rendered
    assert any("'scor' is neither a dimension of source 'users' nor a column of d.users; "
               "did you mean 'score'?" in line for line in rendered), rendered
    missing = {**COLUMNS, "facts": {"ts": "DateTime", "user_id": "String"}}
    rendered = [i.render() for i in check_expressions(model, missing)]
    assert any("join 'referrer': column 'referrer_id' does not exist in d.facts" in line
               for line in rendered), rendered


def test_four_hops_in_sql_and_filters_resolve() -> None:
    text = """\
sources:
  e: {table: d.e, primary_key: id, dimensions: {label: {}}}
  dd: {table: d.dd, primary_key: id, joins: {e: {source: e, keys: {e_id: id}}}}
  c: {table: d.c, primary_key: id, joins: {d: {source: dd, keys: {d_id: id}}}}
  b: {table: d.b, primary_key: id, joins: {c: {source: c, keys: {c_id: id}}}}
  a:
    table: d.a
    joins: {b: {source: b, keys: {b_id: id}}}
    measures:
      w: {agg: sum, sql: "b.c.d.e.w * 2", filter: "b.c.d.e.label != 'E9'"}
"""
    model = load_model_text(text, "test.yaml")
    columns = {"e": {"id": "UInt8", "label": "String", "w": "Int64"},
               "dd": {"id": "UInt8", "e_id": "UInt8"}, "c": {"id": "UInt8", "d_id": "UInt8"},
               "b": {"id": "UInt8", "c_id": "UInt8"}, "a": {"b_id": "UInt8"}}
    assert check_expressions(model, columns) == []
    source = model.source("a")
    assert source is not None
    argument, condition, needs = measure_expressions(source.measures[0], join_paths(model, source))
    assert argument is not None and condition is not None
    assert argument.sql(dialect="clickhouse") == '"b.c.d.e.w" * 2'
    assert condition.sql(dialect="clickhouse") == "\"b.c.d.e.label\" <> 'E9'"
    assert needs == {("b", "c", "d", "e"): {"w", "label"}}
    bad = [i.render() for i in check_expressions(
        model, {**columns, "e": {"id": "UInt8", "label": "String"}})]
    assert any("'w' is neither a dimension of source 'e' nor a column of d.e" in line
               for line in bad), bad
