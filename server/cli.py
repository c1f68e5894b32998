"""The ``semantic`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.compiler import CompiledModel
from engine.demo import DEMO_TABLE
from engine.query import Filter, Order, Query, TimeRange
from semantic import load_model
from semantic.errors import ModelError, SemanticError
from semantic.model import GRAINS
from server.api.query import explain_plan
from server.config import DEFAULT_HOST, DEFAULT_PORT, Settings, load_settings
from server.observability.logs import LOG_FORMATS, configure_logging
from server.runtime import Runtime, compile_against
from server.schemas import decode_query, to_query
from server.serialize import json_value
from server.warehouse import Warehouse, WarehouseUnavailable

logger = logging.getLogger(__name__)

DESCRIPTION = """\
A declarative semantic layer for ClickHouse: metrics.yaml -> rollups -> routed JSON API.

The model file is --model, else $SEMANTIC_MODEL, else ./metrics.yaml. ClickHouse is
$CLICKHOUSE_URL (e.g. http://user:password@host:8123), else the embedded chDB engine in
$SEMANTIC_DATA_DIR (default ./.data/chdb), which one process can open at a time: stop
`semantic serve` before running commands that need the engine.
"""


def _say(line: str) -> None:
    print(line, flush=True)


def _warehouse(settings: Settings) -> Warehouse:
    return Warehouse(settings.dsn, settings.location, settings.pool_size)


def _cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    model = load_model(settings.model_path)
    warehouse = _warehouse(settings)
    try:
        compile_against(model, warehouse)
        checked = f"columns checked against {settings.location}"
    except WarehouseUnavailable as exc:
        checked = f"columns not checked: {exc.message}"
    finally:
        warehouse.close()
    for warning in model.warnings:
        _say(warning.render())
    rollups = sum(len(s.rollups) for s in model.sources)
    warned = f", {len(model.warnings)} warning(s)" if model.warnings else ""
    _say(f"{settings.model_path}: ok{warned} ({len(model.sources)} source(s), {rollups} rollup(s), "
         f"{len(model.endpoints)} endpoint(s); {checked})")
    return 0


@contextmanager
def _compiled(settings: Settings) -> Iterator[tuple[CompiledModel, Warehouse]]:
    """The model compiled against the warehouse, which is closed afterwards."""
    model = load_model(settings.model_path)
    warehouse = _warehouse(settings)
    try:
        yield compile_against(model, warehouse), warehouse
    finally:
        warehouse.close()


def _cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from server.operations import migration_steps, render_steps

    with _compiled(settings) as (compiled, warehouse):
        sys.stdout.write(render_steps(compiled, migration_steps(compiled, warehouse,
                                                                args.keep_unused)))
    return 0


def _running_server(args: argparse.Namespace, settings: Settings) -> str | None:
    """The server to go through: ``--server``, or the local one when it holds the embedded
    engine; None to open the engine here. Raises the lock error when neither works."""
    if args.server is not None:
        return str(args.server).rstrip("/")
    if not settings.embedded:
        return None
    warehouse = _warehouse(settings)
    try:
        warehouse.ping()
    except WarehouseUnavailable:
        default = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
        if not _server_up(default):
            raise
        return default
    finally:
        warehouse.close()
    return None


def _cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    from server.operations import apply_model

    server = _running_server(args, settings)
    if server is not None:
        _say(f"applying {settings.model_path} through {server} (it keeps serving meanwhile)")
        query = "?keep_unused=true" if args.keep_unused else ""
        for line in _post(f"{server}/v1/admin/apply{query}", b"", "application/json")["log"]:
            _say(line)
        return 0
    with _compiled(settings) as (compiled, warehouse):
        steps = apply_model(compiled, warehouse, _say, args.keep_unused)
    built = sum(1 for s in steps if s.statements and s.action != "drop")
    dropped = sum(1 for s in steps if s.action == "drop")
    unchanged = len(steps) - built - dropped
    _say(f"apply: {built} rollup(s) built, {unchanged} unchanged"
         + (f", {dropped} dropped" if dropped else ""))
    return 0


def _cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from server.operations import verify_model

    with _compiled(settings) as (compiled, warehouse):
        drifts = verify_model(compiled, warehouse, _say)
    if drifts:
        _say(f"verify: {len(drifts)} rollup(s) drifted from the raw table; run `semantic "
             "repair` to rebuild them")
        return 1
    _say("verify: every rollup equals the raw table")
    return 0


def _cmd_repair(args: argparse.Namespace, settings: Settings) -> int:
    from server.operations import repair_rollups, verify_model

    with _compiled(settings) as (compiled, warehouse):
        drifts = [] if args.all else verify_model(compiled, warehouse, _say)
        names = ({r.qualified_table for r in compiled.rollups} if args.all
                 else {d.table for d in drifts})
        repaired = repair_rollups(compiled, warehouse, names, _say, drifts)
    _say(f"repair: {repaired} rollup(s) rebuilt")
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from server.operations import load_demo, row_count

    warehouse = _warehouse(settings)
    try:
        existing = row_count(warehouse, args.table)
        if existing and not args.append:
            _say(f"{args.table} already has {existing:,} rows; nothing inserted "
                 "(--append adds more)")
            return 0
        total = load_demo(warehouse, args.rows, args.seed, args.table, _say)
    finally:
        warehouse.close()
    _say(f"{args.table}: {total:,} rows (seed {args.seed})")
    return 0


#: file suffix -> (content type, whether batches are split by lines)
LOAD_FORMATS = {
    ".csv": ("text/csv", True),
    ".jsonl": ("application/x-ndjson", True),
    ".ndjson": ("application/x-ndjson", True),
    ".json": ("application/json", False),
    ".parquet": ("application/vnd.apache.parquet", False),
}


def _batches(data: bytes, content_type: str, by_lines: bool, size: int) -> Iterator[bytes]:
    """The file cut into batches of ``size`` rows (CSV keeps its header in every batch)."""
    if not by_lines:
        yield data
        return
    lines = data.splitlines(keepends=True)
    header = lines[:1] if content_type == "text/csv" else []
    body = lines[len(header):]
    for start in range(0, max(len(body), 1), size):
        yield b"".join(header + body[start:start + size])


def _post(url: str, data: bytes, content_type: str) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        error = json.loads(exc.read() or b"{}").get("error", {})
        raise SemanticError(f"{error.get('message', exc.reason)}"
                            + (f" (field: {error['field']})" if error.get("field") else "")
                            ) from None
    except urllib.error.URLError as exc:
        raise SemanticError(f"cannot reach the server at {url}: {exc.reason}") from None


def _server_up(server: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{server}/healthz", timeout=2):  # noqa: S310
            return True
    except OSError:
        return False


def _cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    """Check the whole file, then insert it batch by batch: a bad row anywhere inserts
    nothing. Goes through the running server when it holds the embedded engine."""
    from server.ingest import ingest

    path = Path(args.file)
    suffix = path.suffix.lower()
    if args.format:
        suffix = f".{args.format}"
    if suffix not in LOAD_FORMATS:
        raise SemanticError(f"{path}: unknown format '{suffix}'; use one of "
                            f"{', '.join(s.lstrip('.') for s in LOAD_FORMATS)} (or --format)")
    content_type, by_lines = LOAD_FORMATS[suffix]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SemanticError(f"cannot read {path}: {exc.strerror}") from None
    batches = list(_batches(data, content_type, by_lines, args.batch_rows))
    server = _running_server(args, settings)
    started = time.perf_counter()
    done = 0
    if server is not None:
        base = f"{server.rstrip('/')}/v1/sources/{args.source}/rows"
        _say(f"loading {path} through {server}")
        for batch in batches:
            _post(f"{base}?dry_run=true", batch, content_type)
        for batch in batches:
            done += int(_post(base, batch, content_type)["inserted"])
            _say(f"inserted {done:,} rows ({done / (time.perf_counter() - started):,.0f} rows/s)")
    else:
        model = load_model(settings.model_path)
        warehouse = _warehouse(settings)
        try:
            runtime = Runtime.start(model, warehouse)
            for batch in batches:
                ingest(runtime, args.source, batch, content_type, dry_run=True)
            for batch in batches:
                done += ingest(runtime, args.source, batch, content_type).rows
                _say(f"inserted {done:,} rows "
                     f"({done / (time.perf_counter() - started):,.0f} rows/s)")
        finally:
            warehouse.close()
    _say(f"load: {done:,} rows into source '{args.source}' in "
         f"{time.perf_counter() - started:.1f} s")
    return 0


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from server.app import create_app
    from server.auth.settings import config_path, load_access_settings

    access = load_access_settings(config_path(settings.model_path))
    if not access.enabled and not _is_loopback(args.host):
        if not args.insecure:
            raise SemanticError(
                f"refusing to listen on {args.host} without access control: anyone who can "
                f"reach it could read every row, insert rows and rebuild the rollups. Configure "
                f"API keys or JWTs in {config_path(settings.model_path)} (`semantic keys "
                "create`), listen on 127.0.0.1, or pass --insecure to serve openly anyway")
        logger.warning("serving on %s WITHOUT access control (--insecure)", args.host)
    model = load_model(settings.model_path)
    warehouse = _warehouse(settings)
    runtime = None
    try:  # refuse to start on a model the warehouse contradicts (unknown columns, ...)
        runtime = Runtime.start(model, warehouse)
    except WarehouseUnavailable as exc:
        logger.warning("ClickHouse is unavailable; starting anyway and answering 503 until it "
                       "is back: %s", exc.message)
    except SemanticError:
        warehouse.close()
        raise
    app = create_app(model, warehouse, close_warehouse=True, runtime=runtime,
                     load=lambda: load_model(settings.model_path), access=access)

    def reload_on_signal(signum: int, frame: object) -> None:
        try:
            app.state.semantic.reload()
        except ModelError as exc:
            logger.error("reload refused, the model has errors:\n%s",
                         "\n".join(issue.render() for issue in exc.issues))
        except SemanticError as exc:
            logger.error("reload failed: %s", exc.message)

    signal.signal(signal.SIGHUP, reload_on_signal)
    guarded = (f"access control on ({len(access.keys)} key(s)"
               + (", JWTs" if access.jwt.configured else "") + ")") if access.enabled \
        else "access control off"
    _say(f"serving {settings.model_path} on http://{args.host}:{args.port} "
         f"(ClickHouse: {settings.location}; {guarded}); reload the model with SIGHUP or "
         "POST /v1/admin/reload")
    # logging is already configured (server.observability.logs); the request log replaces
    # uvicorn's access log
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(),
                log_config=None, access_log=False)
    return 0


def _cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from server.auth.issue import create_key
    from server.auth.settings import config_path

    key, entry = create_key(_split(args.scope), args.filter, _split(args.members), args.name)
    _say(f"API key (shown once; send it as 'Authorization: Bearer <key>' or in "
         f"SEMANTIC_API_KEY):\n\n    {key}\n")
    _say(f"Add this to {config_path(settings.model_path)} and restart the server:\n")
    sys.stdout.write(entry)
    return 0


#: CLI filter syntax, longest symbols first: MEMBER<op>VALUE[,VALUE...]
_FILTER_SYMBOLS = (("!=", "ne"), (">=", "gte"), ("<=", "lte"), ("~=", "contains"),
                   ("^=", "starts_with"), ("=", "eq"), (">", "gt"), ("<", "lt"))
FILTER_HELP = ("MEMBER=V1[,V2], MEMBER!=V1[,V2], MEMBER>V (>=, <, <=), MEMBER~=TEXT (contains), "
               "MEMBER^=TEXT (starts with), 'MEMBER is null', 'MEMBER is not null'; a measure "
               "filters groups (HAVING); repeatable, all must hold (use --body for or-groups)")


def _number(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _parse_filter(text: str, aggregate: Callable[[str], bool]) -> Filter:
    words = text.split()
    if len(words) in (3, 4) and words[1].lower() == "is" and \
            " ".join(words[2:]).lower() in ("null", "not null"):
        return Filter(words[0], "is_null" if len(words) == 3 else "is_not_null")
    for symbol, op in _FILTER_SYMBOLS:
        if symbol in text:
            member, _, value = text.partition(symbol)
            member = member.strip()
            values: tuple[object, ...] = tuple(value.split(",")) if op in ("eq", "ne") \
                else (value,)
            if op == "eq" and len(values) > 1:
                op = "in"
            elif op == "ne" and len(values) > 1:
                op = "not_in"
            if aggregate(member):
                values = tuple(_number(str(v)) for v in values)
            return Filter(member, op, values)
    raise SemanticError(f"--filter {text!r}: write {FILTER_HELP}")


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _print_table(columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    cells = [[str(json_value(row[c])) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    _say("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        _say("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def _query_from_args(args: argparse.Namespace, runtime: Runtime) -> tuple[Query, bool]:
    """The query the arguments describe (``--body`` JSON, or the options), and force_raw."""
    if args.body is not None:
        text = sys.stdin.read() if args.body == "-" else args.body
        request = decode_query(text.encode())
        return to_query(request, runtime.source_name(request.source)), request.force_raw
    source_name = runtime.source_name(args.source)
    source = runtime.compiled.sources[source_name]
    time_range = None
    if args.range is not None:
        time_range = TimeRange(relative=args.range)
    elif args.start is not None or args.end is not None:
        time_range = TimeRange(args.start, args.end)
    query = Query(
        source=source_name,
        measures=_split(args.measures),
        dimensions=_split(args.dimensions),
        grain=args.grain,
        filters=tuple(_parse_filter(f, source.is_aggregate) for f in args.filter),
        order=tuple(Order(o.lstrip("-"), o.startswith("-")) for o in _split(args.order)),
        limit=args.limit,
        offset=args.offset,
        time_range=time_range,
        timezone=args.timezone,
    )
    return query, args.raw


def _cmd_query(args: argparse.Namespace, settings: Settings) -> int:
    model = load_model(settings.model_path)
    warehouse = _warehouse(settings)
    try:
        runtime = Runtime.start(model, warehouse)
        query, force_raw = _query_from_args(args, runtime)
        plan = runtime.plan(query, force_raw=force_raw)
        answer = runtime.run(plan)
    finally:
        warehouse.close()
    if args.json:
        rows = [{k: json_value(v) for k, v in row.items()} for row in answer.rows]
        _say(json.dumps({"data": rows, "meta": {"table": plan.table,
                                                "tables": list(plan.tables)}}, indent=2))
    else:
        _print_table(plan.columns, answer.rows)
        more = " (truncated; raise --limit)" if answer.truncated else ""
        _say(f"-- {len(answer.rows)} row(s) from {' + '.join(plan.tables)} in "
             f"{answer.elapsed_ms:.1f} ms{more}")
        if args.sql:
            _say(f"-- {plan.sql}")
    return 0


def _cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    model = load_model(settings.model_path)
    warehouse = _warehouse(settings)
    try:
        runtime = Runtime.start(model, warehouse)
        query, force_raw = _query_from_args(args, runtime)
        plan = runtime.plan(query, force_raw=force_raw)
    finally:
        warehouse.close()
    explained = explain_plan(plan)
    if args.json:
        _say(json.dumps(explained, indent=2))
        return 0
    _say(f"answer from: {' + '.join(plan.tables)}")
    if plan.query.interval is not None:
        start, end = plan.query.interval
        _say(f"time range:  [{start.isoformat() if start else '-inf'}, "
             f"{end.isoformat() if end else '+inf'}) in {plan.query.timezone}")
    if len(plan.pieces) > 1:
        _say("pieces:")
        for piece in explained["pieces"]:
            _say(f"  {piece['table']}  [{piece['from'] or '-inf'}, {piece['to'] or '+inf'})")
    _say("candidates:")
    rows = [{"rollup": c.rollup, "verdict": ("chosen" if c.chosen else "usable")
             if c.reason is None else c.reason,
             "read_bytes": c.cost if c.cost is not None else "", "detail": c.detail}
            for c in plan.candidates]
    if rows:
        _print_table(["rollup", "verdict", "read_bytes", "detail"], rows)
    else:
        _say("  (the source has no rollups)")
    _say("sql:")
    _say(f"  {plan.sql}")
    if plan.parameters:
        _say(f"parameters: {json.dumps(explained['parameters'])}")
    return 0


def _add_query_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--source", help="source name (default: the only one)")
    command.add_argument("-m", "--measures", help="comma-separated measures and metrics")
    command.add_argument("-d", "--dimensions", help="comma-separated dimensions (the time "
                         "column needs --grain)")
    command.add_argument("-g", "--grain", choices=GRAINS, help="time grain")
    command.add_argument("-f", "--filter", action="append", default=[], help=FILTER_HELP)
    command.add_argument("--from", dest="start", help="range start, inclusive: 2026-01-01, "
                         "2026-01-01T06:00, 2026-01-01T06:00:00Z or with an offset")
    command.add_argument("--to", dest="end", help="range end, exclusive (same forms)")
    command.add_argument("--range", help="relative range: today, yesterday, 'this month', "
                         "'last 7 days', 'last week', ...")
    command.add_argument("--timezone", help="IANA time zone for buckets and dates (default: the "
                         "source's)")
    command.add_argument("-o", "--order", help="comma-separated members, '-' prefix for "
                         "descending")
    command.add_argument("-l", "--limit", type=int, help="row limit (default 10000, "
                         "max 100000)")
    command.add_argument("--offset", type=int, default=0, help="rows to skip")
    command.add_argument("--raw", action="store_true", help="skip rollups; read the raw table")
    command.add_argument("--body", help="the whole query as JSON, as POST /v1/query takes it "
                         "('-' reads stdin); replaces the options above")
    command.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semantic", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: $SEMANTIC_MODEL or metrics.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the SQL run")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("validate", help="check the model; print located errors, exit 1 on any")
    plan = commands.add_parser("plan", help="print what `apply` would do, with every DDL "
                               "statement")
    apply = commands.add_parser("apply", help="create missing rollups and backfill them, then "
                                "drop rollup tables the model no longer uses (idempotent)")
    for command in (plan, apply):
        command.add_argument("--keep-unused", action="store_true", help="keep (and keep "
                             "feeding) rollup tables the model no longer uses")
    apply.add_argument("--server", help="apply through a running `semantic serve` at this URL, "
                       "which keeps serving and switches to the new model when the rollups are "
                       f"built (default: http://{DEFAULT_HOST}:{DEFAULT_PORT} when it holds "
                       "the embedded engine)")

    commands.add_parser("verify", help="compare every rollup with the raw table, group by "
                        "group; exit 1 on drift (e.g. after ALTER UPDATE/DELETE on the source)")
    repair = commands.add_parser("repair", help="rebuild drifted rollups from the source and "
                                 "swap them in (REPLACE PARTITION), ingestion paused")
    repair.add_argument("--all", action="store_true", help="rebuild every rollup, drifted or "
                        "not")

    demo = commands.add_parser("demo", help="create analytics.events and fill it with the "
                               "reference data (skipped if it already has rows)")
    demo.add_argument("--rows", type=int, default=5_000_000, help="rows to insert "
                      "(default 5,000,000)")
    demo.add_argument("--seed", type=int, default=1, help="seed; the same seed gives the same "
                      "rows (default 1)")
    demo.add_argument("--table", default=DEMO_TABLE, help=f"target table (default {DEMO_TABLE})")
    demo.add_argument("--append", action="store_true", help="insert even if the table has rows")

    load = commands.add_parser("load", help="insert a CSV, JSON lines, JSON or Parquet file "
                               "into a source (the whole file is checked first)")
    load.add_argument("source", help="source name from metrics.yaml")
    load.add_argument("file", help="file to load: .csv (with a header), .jsonl/.ndjson, .json "
                      "(an array of objects) or .parquet")
    load.add_argument("--format", choices=[s.lstrip(".") for s in LOAD_FORMATS],
                      help="file format (default: from the file name)")
    load.add_argument("--batch-rows", type=int, default=100_000, help="rows per INSERT for "
                      "CSV and JSON lines (default 100,000)")
    load.add_argument("--server", help="send the rows to a running `semantic serve` at this URL "
                      f"(default: http://{DEFAULT_HOST}:{DEFAULT_PORT} when it holds the "
                      "embedded engine)")

    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"bind address (default "
                       f"{DEFAULT_HOST})")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default "
                       f"{DEFAULT_PORT})")
    serve.add_argument("--log-level", default="info", type=str.lower,
                       choices=("debug", "info", "warning", "error"),
                       help="lowest level logged (default info: one line per request; warning "
                       "hides them); SEMANTIC_LOG_FORMAT=json logs JSON lines")
    serve.add_argument("--insecure", action="store_true", help="listen on a non-loopback "
                       "address without access control (refused otherwise)")

    keys = commands.add_parser("keys", help="issue API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="print a new API key (once) and the "
                                     "[[auth.keys]] entry to add to semantic.toml")
    create.add_argument("--scope", required=True, help="comma-separated scopes: read "
                        "(queries, meta, endpoints, explain), ingest (rows), admin (/v1/admin)")
    create.add_argument("--filter", action="append", default=[], metavar="CLAIM=V1[,V2]",
                        help="a row-level security claim the key carries (the model's "
                        "security: maps claims to dimensions); repeatable")
    create.add_argument("--members", help="comma-separated measures, metrics and dimensions "
                        "the key may read (default: all)")
    create.add_argument("--name", default="", help="a label kept with the entry")

    query = commands.add_parser("query", help="run a query; print rows and the tables used")
    _add_query_arguments(query)
    query.add_argument("--sql", action="store_true", help="also print the SQL")
    explain = commands.add_parser("explain", help="show how a query would be answered: tables, "
                                  "SQL, and why each rollup can or cannot serve it")
    _add_query_arguments(explain)
    return parser


COMMANDS = {
    "validate": _cmd_validate,
    "plan": _cmd_plan,
    "apply": _cmd_apply,
    "demo": _cmd_demo,
    "serve": _cmd_serve,
    "query": _cmd_query,
    "explain": _cmd_explain,
    "load": _cmd_load,
    "verify": _cmd_verify,
    "repair": _cmd_repair,
    "keys": _cmd_keys,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings(args.model)
    if settings.log_format not in LOG_FORMATS:
        print(f"error: SEMANTIC_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not "
              f"'{settings.log_format}'", file=sys.stderr)
        return 2
    level = str(getattr(args, "log_level", "info")).upper()
    configure_logging(settings.log_format, logging.DEBUG if args.verbose else level)
    if not args.verbose:
        logging.getLogger("server.warehouse").setLevel(logging.INFO)
    try:
        return COMMANDS[args.command](args, settings)
    except ModelError as exc:
        for issue in exc.issues:
            print(issue.render(), file=sys.stderr)
        print(f"{len(exc.issues)} error(s)", file=sys.stderr)
        return 1
    except SemanticError as exc:
        field = getattr(exc, "field", None)
        print(f"error: {exc.message}" + (f" (field: {field})" if field else ""), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
