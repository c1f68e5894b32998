"""Phase two of loading: semantic rules over the built model.

One rule is one small function ``(model) -> Iterable[Issue]``, registered in ``RULES``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from semantic.errors import Issue
from semantic.model import Endpoint, Model, Ref, Source
from semantic.suggest import did_you_mean

RESERVED_PREFIXES = ("/v1", "/healthz", "/readyz", "/schema", "/openapi.json", "/docs")


def _unknown(ref: Ref, kind: str, candidates: Iterable[str], where: str, code: str) -> Issue:
    names = list(candidates)
    hint = did_you_mean(ref.name, names)
    known = f" (defined: {', '.join(names)})" if names and not hint else ""
    return Issue(ref.location, f"{kind} '{ref.name}' is not defined in {where}{hint}{known}", code)


def check_unique_member_names(model: Model) -> Iterator[Issue]:
    for source in model.sources:
        seen: dict[str, str] = {}
        if source.time_column:
            seen[source.time_column] = "the time column"
        for kind, members in (("dimension", source.dimensions), ("measure", source.measures),
                              ("metric", source.metrics)):
            for member in members:
                if member.name in seen:
                    yield Issue(member.location, f"{kind} '{member.name}' has the same name as "
                                f"{seen[member.name]} of source '{source.name}'; rename one",
                                "duplicate-name")
                else:
                    seen[member.name] = f"{kind} '{member.name}'"


def _check_rollup_refs(source: Source) -> Iterator[Issue]:
    dimension_names = [d.name for d in source.dimensions]
    measure_names = [m.name for m in source.measures] + [m.name for m in source.metrics]
    for rollup in source.rollups:
        where = f"source '{source.name}'"
        for ref in rollup.dimensions:
            if ref.name == source.time_column:
                yield Issue(ref.location, f"the time column '{ref.name}' is not a rollup "
                            "dimension; set the rollup's 'grain' instead", "time-as-dimension")
            elif ref.name not in dimension_names:
                yield _unknown(ref, "dimension", dimension_names, where, "unknown-dimension")
        for ref in rollup.measures:
            if ref.name not in measure_names:
                yield _unknown(ref, "measure", measure_names, where, "unknown-measure")
        yield from _duplicates(rollup.dimensions + rollup.measures, f"rollup '{rollup.name}'")
        if rollup.grain and not source.time_column:
            yield Issue(rollup.location, f"rollup '{rollup.name}' has a grain but source "
                        f"'{source.name}' declares no 'time' column", "no-time-column")


def _duplicates(refs: Iterable[Ref], where: str) -> Iterator[Issue]:
    seen: set[str] = set()
    for ref in refs:
        if ref.name in seen:
            yield Issue(ref.location, f"'{ref.name}' is listed twice in {where}",
                        "duplicate-reference")
        seen.add(ref.name)


def check_rollups(model: Model) -> Iterator[Issue]:
    for source in model.sources:
        yield from _check_rollup_refs(source)


def _check_endpoint(model: Model, endpoint: Endpoint) -> Iterator[Issue]:
    where = f"endpoint '{endpoint.path}'"
    path_location = endpoint.location.at("endpoints", endpoint.path)
    if not endpoint.path.startswith("/") or " " in endpoint.path:
        yield Issue(path_location, f"endpoint path {endpoint.path!r} must "
                    "start with '/' and contain no spaces", "invalid-path")
    elif any(endpoint.path == p or endpoint.path.startswith(p + "/") for p in RESERVED_PREFIXES):
        yield Issue(path_location, f"endpoint path {endpoint.path!r} is "
                    f"reserved (paths under {', '.join(RESERVED_PREFIXES)} belong to the server)",
                    "reserved-path")
    source = model.source(endpoint.source.name)
    if source is None:
        yield _unknown(endpoint.source, "source", [s.name for s in model.sources], "the model",
                       "unknown-source")
        return
    members = source.member_names()
    dimension_names = [d.name for d in source.dimensions]
    uses_time = False
    for field in endpoint.fields:
        ref = field.member
        if ref.name not in members:
            yield _unknown(ref, "member", members, f"source '{source.name}'", "unknown-member")
        elif ref.name == source.time_column:
            uses_time = True
            if endpoint.grain is None:
                yield Issue(ref.location, f"field '{field.name}' shows the time column "
                            f"'{ref.name}'; set the endpoint's 'grain' (e.g. grain: day)",
                            "missing-grain")
        elif endpoint.returns == "object" and ref.name in dimension_names:
            yield Issue(ref.location, f"field '{field.name}' is a dimension, but {where} returns "
                        "one object; use 'returns: list' or remove the field",
                        "object-with-dimension")
    if endpoint.returns == "object" and uses_time:
        yield Issue(endpoint.location, f"{where} returns one object but groups by time; use "
                    "'returns: list'", "object-with-dimension")
    if endpoint.grain and not uses_time:
        yield Issue(endpoint.location, f"{where} sets grain '{endpoint.grain}' but no field "
                    f"shows the time column '{source.time_column}'", "unused-grain")
    yield from _duplicates((f.member for f in endpoint.fields), where)
    field_names = [f.name for f in endpoint.fields]
    for item in endpoint.order:
        if item.name.name not in field_names:
            yield _unknown(item.name, "field", field_names, where, "unknown-field")
    for endpoint_filter in endpoint.filters:
        if endpoint_filter.dimension.name not in dimension_names:
            yield _unknown(endpoint_filter.dimension, "dimension", dimension_names,
                           f"source '{source.name}'", "unknown-dimension")


def check_security(model: Model) -> Iterator[Issue]:
    """Each security claim restricts a defined dimension, each dimension at most once."""
    for source in model.sources:
        dimension_names = [d.name for d in source.dimensions]
        secured: dict[str, str] = {}
        for claim in source.security:
            ref = claim.dimension
            if ref.name == source.time_column:
                yield Issue(ref.location, f"security claim '{claim.claim}' restricts the time "
                            f"column '{ref.name}'; security claims restrict dimensions "
                            "(time is restricted by each query's time_range)", "security-on-time")
            elif ref.name not in dimension_names:
                yield _unknown(ref, "dimension", dimension_names, f"source '{source.name}'",
                               "unknown-dimension")
            elif ref.name in secured:
                yield Issue(ref.location, f"dimension '{ref.name}' is already restricted by "
                            f"security claim '{secured[ref.name]}'; map each dimension to one "
                            "claim", "duplicate-security")
            else:
                secured[ref.name] = claim.claim


def check_secured_rollups(model: Model) -> Iterator[Issue]:
    """Warn about rollups that can never serve a restricted caller: they lack a security
    dimension, so the rows of one tenant cannot be told apart in them."""
    for source in model.sources:
        dimension_names = {d.name for d in source.dimensions}
        for rollup in source.rollups:
            covered = {ref.name for ref in rollup.dimensions}
            for claim in source.security:
                name = claim.dimension.name
                if name in dimension_names and name not in covered:
                    yield Issue(rollup.location, f"rollup '{rollup.name}' lacks security "
                                f"dimension '{name}' (claim '{claim.claim}'), so it can never "
                                f"serve callers restricted by it; add '{name}' to its "
                                "dimensions", "rollup-not-secured", "warning")
                    break


def check_endpoints(model: Model) -> Iterator[Issue]:
    for endpoint in model.endpoints:
        yield from _check_endpoint(model, endpoint)


RULES: tuple[Callable[[Model], Iterable[Issue]], ...] = (
    check_unique_member_names,
    check_rollups,
    check_endpoints,
    check_security,
    check_secured_rollups,
)


def check_model(model: Model) -> list[Issue]:
    """Run every rule and return all issues found."""
    return [issue for rule in RULES for issue in rule(model)]
