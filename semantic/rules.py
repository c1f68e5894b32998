"""Phase two of loading: semantic rules over the built model.

One rule is one small function ``(model) -> Iterable[Issue]``, registered in ``RULES``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from semantic.errors import Issue
from semantic.joins import dimension_names, split_member
from semantic.model import Endpoint, Join, Model, Ref, Source
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


def _unknown_dimension(model: Model, source: Source, ref: Ref, known: list[str]) -> Issue:
    """An unknown dimension, with the join path's own problem when it names a join."""
    path, _ = split_member(ref.name)
    at: Source | None = source
    for index, step in enumerate(path):
        join = at.join(step) if at is not None else None
        if join is None:
            joins = [j.name for j in at.joins] if at is not None else []
            written = ".".join(path[:index + 1])
            hint = did_you_mean(step, joins)
            where = f"source '{at.name}'" if at is not None else "the model"
            defined = f" (joins: {', '.join(joins)})" if joins and not hint else ""
            return Issue(ref.location, f"'{ref.name}': '{written}' is not a join of {where}"
                         f"{hint}{defined}", "unknown-dimension")
        at = model.source(join.source.name)
    return _unknown(ref, "dimension", known, f"source '{source.name}'", "unknown-dimension")


def _check_rollup_refs(model: Model, source: Source) -> Iterator[Issue]:
    known = dimension_names(model, source)
    measure_names = [m.name for m in source.measures] + [m.name for m in source.metrics]
    for rollup in source.rollups:
        where = f"source '{source.name}'"
        for ref in rollup.dimensions:
            if ref.name == source.time_column:
                yield Issue(ref.location, f"the time column '{ref.name}' is not a rollup "
                            "dimension; set the rollup's 'grain' instead", "time-as-dimension")
            elif ref.name not in known:
                yield _unknown_dimension(model, source, ref, known)
        for ref in rollup.measures:
            if ref.name not in measure_names:
                yield _unknown(ref, "measure", measure_names, where, "unknown-measure")
            elif (metric := source.metric(ref.name)) is not None and metric.time is not None:
                yield Issue(ref.location, f"metric '{ref.name}' ({metric.time.kind}) is "
                            f"computed from the buckets of '{metric.sql}' when asked: list "
                            f"'{metric.sql}' in the rollup", "time-metric-in-rollup")
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
        yield from _check_rollup_refs(model, source)


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
    dimensions = dimension_names(model, source)
    members = source.member_names() + tuple(dimensions[len(source.dimensions):])
    uses_time = False
    for field in endpoint.fields:
        ref = field.member
        if ref.name not in members:
            if "." in ref.name:
                yield _unknown_dimension(model, source, ref, dimensions)
            else:
                yield _unknown(ref, "member", members, f"source '{source.name}'",
                               "unknown-member")
        elif ref.name == source.time_column:
            uses_time = True
            if endpoint.grain is None:
                yield Issue(ref.location, f"field '{field.name}' shows the time column "
                            f"'{ref.name}'; set the endpoint's 'grain' (e.g. grain: day)",
                            "missing-grain")
        elif endpoint.returns == "object" and ref.name in dimensions:
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
        if endpoint_filter.dimension.name not in dimensions:
            yield _unknown_dimension(model, source, endpoint_filter.dimension, dimensions)


def check_security(model: Model) -> Iterator[Issue]:
    """Each security claim restricts a defined dimension, each dimension at most once."""
    for source in model.sources:
        dimensions = dimension_names(model, source)
        secured: dict[str, str] = {}
        for claim in source.security:
            ref = claim.dimension
            if ref.name == source.time_column:
                yield Issue(ref.location, f"security claim '{claim.claim}' restricts the time "
                            f"column '{ref.name}'; security claims restrict dimensions "
                            "(time is restricted by each query's time_range)", "security-on-time")
            elif ref.name not in dimensions:
                yield _unknown_dimension(model, source, ref, dimensions)
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
        known = set(dimension_names(model, source))
        for rollup in source.rollups:
            covered = {ref.name for ref in rollup.dimensions}
            for claim in source.security:
                name = claim.dimension.name
                if name in known and name not in covered:
                    yield Issue(rollup.location, f"rollup '{rollup.name}' lacks security "
                                f"dimension '{name}' (claim '{claim.claim}'), so it can never "
                                f"serve callers restricted by it; add '{name}' to its "
                                "dimensions", "rollup-not-secured", "warning")
                    break


def check_endpoints(model: Model) -> Iterator[Issue]:
    for endpoint in model.endpoints:
        yield from _check_endpoint(model, endpoint)


def check_joins(model: Model) -> Iterator[Issue]:
    """Each join names a source with a primary key, by exactly that key, under a name no member
    uses; no chain of joins comes back to a source it left."""
    sources = [s.name for s in model.sources]
    for source in model.sources:
        members = set(source.member_names())
        for join in source.joins:
            what = f"join '{join.name}' of source '{source.name}'"
            if join.name in members:
                yield Issue(join.location, f"{what} has the name of a member of the source; "
                            f"'{join.name}.<dimension>' would be ambiguous, rename one",
                            "ambiguous-join")
            target = model.source(join.source.name)
            if target is None:
                yield _unknown(join.source, "source", sources, "the model", "unknown-source")
                continue
            if target.name == source.name:
                yield Issue(join.source.location, f"{what} joins the source to itself; a join "
                            "adds another source's dimensions", "join-cycle")
                continue
            if not target.primary_key:
                yield Issue(join.source.location, f"{what}: source '{target.name}' declares no "
                            "primary_key, so nothing says one row matches each key; add "
                            f"primary_key: <its key column(s)> to '{target.name}'",
                            "no-primary-key")
                continue
            rights = [right for _, right in join.keys]
            if join.keys and sorted(rights) != sorted(target.primary_key):
                yield Issue(join.keys_location or join.location, f"{what} must match source "
                            f"'{target.name}' by its whole primary key "
                            f"({', '.join(target.primary_key)}), got {', '.join(rights)}; a "
                            "join by part of a key could match several rows and multiply "
                            "measures", "join-not-by-key")
    yield from _join_cycles(model)


def _join_cycles(model: Model) -> Iterator[Issue]:
    graph = {s.name: [(j, j.source.name) for j in s.joins] for s in model.sources}
    reported: set[frozenset[str]] = set()
    for start in model.sources:
        stack: list[tuple[str, tuple[str, ...], Join | None]] = [
            (start.name, (start.name,), None)]
        while stack:
            at, path, first = stack.pop()
            for join, target in graph.get(at, []):
                if target == start.name and len(path) > 1:
                    cycle = frozenset(path)
                    if cycle not in reported:
                        reported.add(cycle)
                        where = first or join
                        yield Issue(where.location, "joins form a cycle: "
                                    f"{' -> '.join((*path, target))}; a source cannot be "
                                    "reached back through its own joins", "join-cycle")
                elif target not in path and target in graph:
                    stack.append((target, (*path, target), first or join))


RULES: tuple[Callable[[Model], Iterable[Issue]], ...] = (
    check_joins,
    check_unique_member_names,
    check_rollups,
    check_endpoints,
    check_security,
    check_secured_rollups,
)


def check_model(model: Model) -> list[Issue]:
    """Run every rule and return all issues found."""
    return [issue for rule in RULES for issue in rule(model)]
