"""``security:`` in the model: claims mapped to dimensions, their located errors, and the
warning about rollups that can never serve a restricted caller."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from semantic import ModelError, load_model, load_model_text
from semantic.model import SecurityClaim

BROKEN = Path(__file__).parent / "broken"

SOURCE = """\
    version: 1
    sources:
      events:
        table: analytics.events
        time: ts
        dimensions:
          tenant_id:
          region:
        measures:
          n: {agg: count}
"""


def _load(extra: str) -> list[str]:
    text = textwrap.dedent(SOURCE) + textwrap.indent(textwrap.dedent(extra), "    ")
    try:
        model = load_model_text(text, "test.yaml")
    except ModelError as exc:
        return [issue.render() for issue in exc.issues]
    return [issue.render() for issue in model.warnings]


def test_security_claims_load_with_their_dimensions() -> None:
    text = textwrap.dedent(SOURCE) + ("    security:\n      tenant: tenant_id\n"
                                      "      regions: region\n")
    source = load_model_text(text, "test.yaml").sources[0]
    assert [(c.claim, c.dimension.name) for c in source.security] == [
        ("tenant", "tenant_id"), ("regions", "region")]
    assert isinstance(source.security[0], SecurityClaim)
    assert str(source.security[0].location) == "test.yaml:12:15"


def test_security_errors_are_located() -> None:
    assert _load("""\
            security:
              tenant: tenant
              when: ts
              org: region
              area: region
              1st: region
        """) == [
        "test.yaml:12:15: error: dimension 'tenant' is not defined in source 'events'; did you "
        "mean 'tenant_id'? [unknown-dimension]",
        "test.yaml:13:13: error: security claim 'when' restricts the time column 'ts'; security "
        "claims restrict dimensions (time is restricted by each query's time_range) "
        "[security-on-time]",
        "test.yaml:15:13: error: dimension 'region' is already restricted by security claim "
        "'org'; map each dimension to one claim [duplicate-security]",
        "test.yaml:16:7: error: security claim name '1st' must be an identifier (letters, "
        "digits and _, not starting with a digit) [invalid-name]",
    ]


def test_security_must_be_a_mapping() -> None:
    assert _load("security: [tenant_id]\n") == [
        "test.yaml:11:15: error: security must map claims to the dimensions they restrict "
        "(e.g. tenant: tenant_id), got a list [type]"]


def test_rollups_without_the_secured_dimension_are_a_warning_not_an_error() -> None:
    assert _load("""\
            security:
              tenant: tenant_id
            rollups:
              totals: {measures: [n]}
              by_tenant: {dimensions: [tenant_id, region], measures: [n]}
        """) == [
        "test.yaml:14:15: warning: rollup 'totals' lacks security dimension 'tenant_id' (claim "
        "'tenant'), so it can never serve callers restricted by it; add 'tenant_id' to its "
        "dimensions [rollup-not-secured]"]


def _expected(path: Path) -> list[str]:
    return [line.removeprefix("# expect: ").rstrip("\n")
            for line in path.read_text().splitlines() if line.startswith("# expect: ")]


@pytest.mark.parametrize("path", sorted(BROKEN.glob("security_*.yaml")), ids=lambda p: p.stem)
def test_broken_security_models_report_their_expected_issues(path: Path) -> None:
    try:
        found = load_model(path).warnings
    except ModelError as exc:
        found = exc.issues
    prefix = f"{path}:"
    assert [issue.render().removeprefix(prefix) for issue in found] == _expected(path)
