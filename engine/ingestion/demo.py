"""The reference data set of SCENARIO.md: ``analytics.events`` and a seeded generator.

The generator draws every random column from ``cityHash64(seed, row number, column)``, so the
same seed gives the same rows at any size, with the distribution of the scenario: 90 days from
2026-01-01, 10,000 users, 3 regions, integer revenue 0..99.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

DEMO_TABLE = "analytics.events"
SECONDS = 86400 * 90

_COLUMNS = (
    "event_id String, event_ts DateTime, user_id String, region String, revenue Float64"
)
_GENERATOR = """
SELECT
  concat('evt_', toString(number)) AS event_id,
  toDateTime('2026-01-01 00:00:00', 'UTC')
    + toIntervalSecond(cityHash64({seed: UInt64}, number, 1) % {seconds: UInt64}) AS event_ts,
  concat('usr_', leftPad(toString(cityHash64({seed: UInt64}, number, 2) % 10000), 4, '0'))
    AS user_id,
  arrayElement(['us-east', 'us-west', 'eu-central'],
               (cityHash64({seed: UInt64}, number, 3) % 3) + 1) AS region,
  toFloat64(cityHash64({seed: UInt64}, number, 4) % 100) AS revenue
FROM numbers({start: UInt64}, {count: UInt64})
"""


def create_demo_table(table: str = DEMO_TABLE) -> list[exp.Expression]:
    """The database and the ``MergeTree`` table of the scenario."""
    target = exp.to_table(table)
    schema = sqlglot.parse_one(f"CREATE TABLE t ({_COLUMNS})", dialect="clickhouse")
    columns = schema.this.expressions
    properties = sqlglot.parse_one(
        "CREATE TABLE t (x UInt8) ENGINE = MergeTree() ORDER BY (event_ts, event_id)",
        dialect="clickhouse",
    ).args["properties"]
    return [
        exp.Create(this=exp.to_identifier(target.db), kind="DATABASE", exists=True),
        exp.Create(this=exp.Schema(this=target, expressions=columns), kind="TABLE", exists=True,
                   properties=properties),
    ]


#: the users the events name, one row each: a dimension table the reference model joins.
#: Users numbered USERS_KNOWN and above have no row, so about 1 % of events match no user
#: (their country is NULL, as a LEFT JOIN gives it).
USERS_KNOWN = 9_900
_USER_COLUMNS = "user_id String, country String, plan String"
_USER_GENERATOR = """
SELECT
  concat('usr_', leftPad(toString(number), 4, '0')) AS user_id,
  arrayElement(['US', 'DE', 'FR', 'JP', 'BR'], (cityHash64({seed: UInt64}, number, 5) % 5) + 1)
    AS country,
  arrayElement(['free', 'pro', 'team'], (cityHash64({seed: UInt64}, number, 6) % 3) + 1) AS plan
FROM numbers({count: UInt64})
"""


def users_table(events_table: str = DEMO_TABLE) -> str:
    """The demo's users table: ``users`` beside the events table."""
    return f"{exp.to_table(events_table).db}.users"


def create_users_table(table: str) -> exp.Create:
    """The users dimension table, keyed (and ordered) by ``user_id``."""
    schema = sqlglot.parse_one(f"CREATE TABLE t ({_USER_COLUMNS})", dialect="clickhouse")
    properties = sqlglot.parse_one(
        "CREATE TABLE t (x UInt8) ENGINE = MergeTree() ORDER BY user_id", dialect="clickhouse",
    ).args["properties"]
    columns = schema.this.expressions
    return exp.Create(this=exp.Schema(this=exp.to_table(table), expressions=columns),
                      kind="TABLE", exists=True, properties=properties)


def users_insert(table: str, seed: int) -> tuple[exp.Insert, dict[str, int]]:
    """``INSERT ... SELECT`` of the demo's users (country and plan drawn from the seed)."""
    select = sqlglot.parse_one(_USER_GENERATOR, dialect="clickhouse")
    assert isinstance(select, exp.Select)
    return exp.insert(select, exp.to_table(table)), {"seed": seed, "count": USERS_KNOWN}


def demo_insert(table: str, start: int, count: int, seed: int) -> tuple[exp.Insert,
                                                                          dict[str, int]]:
    """``INSERT ... SELECT`` of ``count`` generated rows numbered from ``start``.

    >>> statement, params = demo_insert("analytics.events", 0, 10, 7)
    >>> params == {"seed": 7, "seconds": 7776000, "start": 0, "count": 10}
    True
    """
    select = sqlglot.parse_one(_GENERATOR, dialect="clickhouse")
    assert isinstance(select, exp.Select)
    parameters = {"seed": seed, "seconds": SECONDS, "start": start, "count": count}
    return exp.insert(select, exp.to_table(table)), parameters
