"""``semantic serve`` and ``semantic dev`` (serve, and apply every saved change of the model).

While serving the embedded engine, the server records its URL in the data directory so the
other commands go through it (``server.client``).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace

from litestar import Litestar

from semantic import load_model
from semantic.errors import ModelError, SemanticError
from server.app import create_app
from server.auth.settings import AccessSettings, config_path, load_access_settings
from server.cli.common import open_warehouse
from server.cli.output import print_issues, say, warn
from server.client import recorded_server
from server.http.hosts import is_loopback
from server.http.protocol import CoalescingHttpToolsProtocol
from server.operations.apply import migration_steps
from server.operations.validation import check_offline
from server.runtime.compile import compile_against
from server.runtime.compiled import Runtime
from server.runtime.state import State
from server.service.endpoints import endpoint_routing
from server.settings import Settings, SqlSettings
from server.warehouse.availability import WarehouseUnavailable

logger = logging.getLogger(__name__)


def summary(runtime: Runtime | None, settings: Settings, url: str,
            access: AccessSettings, sql_url: str | None = None) -> Iterator[str]:
    """What a server serves: model file, warehouse, access control, rollups ready, endpoints,
    URL."""
    yield f"model:     {settings.model_path}"
    yield f"warehouse: {settings.location}"
    yield "access:    " + ((f"access control on ({len(access.keys)} key(s)"
                           + (", JWTs" if access.jwt.configured else "") + ")")
                          if access.enabled else "access control off")
    if runtime is None:
        yield "rollups:   unknown until ClickHouse is reachable (answering 503 meanwhile)"
    else:
        ready = sum(r.qualified_table in runtime.ready for r in runtime.compiled.rollups)
        yield f"rollups:   {ready}/{len(runtime.compiled.rollups)} ready"
        yield f"endpoints: {len(runtime.model.endpoints)}"
        yield from endpoint_routing(runtime)
    yield f"listening: {url} (reload the model with SIGHUP or POST /v1/admin/reload)"
    if sql_url is not None:
        yield (f"sql:       {sql_url} (PostgreSQL clients"
               + ("; the password is an API key or a JWT)" if access.enabled else ")"))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # before the record is written: early clients wait in the backlog
    except OSError as exc:
        sock.close()
        raise SemanticError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _access(settings: Settings, host: str, insecure: bool) -> AccessSettings:
    """The access control to serve with; refuses an open non-loopback address."""

    access = load_access_settings(config_path(settings.model_path))
    if not access.enabled and not is_loopback(host):
        if not insecure:
            raise SemanticError(
                f"refusing to listen on {host} without access control: anyone who can "
                f"reach it could read every row, insert rows and rebuild the rollups. Configure "
                f"API keys or JWTs in {config_path(settings.model_path)} (`semantic keys "
                "create`), listen on 127.0.0.1, or pass --insecure to serve openly anyway")
        logger.warning("serving on %s WITHOUT access control (--insecure); host names "
                       "answered: loopback ones%s", host,
                       f" and {', '.join(access.hosts)}" if access.hosts else
                       " only (set SEMANTIC_ALLOWED_HOSTS for others)")
    return access


def _sql_socket(settings: Settings, args: argparse.Namespace,
                insecure: bool) -> tuple[socket.socket | None, SqlSettings]:
    """The SQL interface's socket (None when turned off) and its settings."""
    sql = settings.sql
    port = args.sql_port if args.sql_port is not None else sql.port
    sql = replace(sql, port=port, host=sql.host or args.host)
    if not port:
        return None, sql
    assert sql.host is not None
    if sql.host != args.host:
        _access(settings, sql.host, insecure)
    return _bind(sql.host, port), sql


def _start(settings: Settings, access: AccessSettings,
           args: argparse.Namespace) -> tuple[Litestar, Runtime | None, str | None]:
    """The app, its model compiling against the warehouse in the background. Waits for that
    to refuse a model the warehouse contradicts (unknown columns, ...), but a ClickHouse
    server silent for longer than the connect timeout does not hold up listening."""

    model = load_model(settings.model_path)
    check_offline(model)
    sock, sql = _sql_socket(settings, args, args.insecure)
    warehouse = open_warehouse(settings)
    app = create_app(model, warehouse, close_warehouse=True,
                     load=lambda: load_model(settings.model_path), access=access,
                     cache_bytes=settings.cache_bytes,
                     max_staleness=settings.cache_max_staleness, sql_socket=sock, sql=sql)
    sql_url = None
    if sock is not None:
        host, port = sock.getsockname()[:2]
        sql_url = f"postgresql://{f'[{host}]' if ':' in host else host}:{port}/semantic"
        if access.enabled and sql.tls_cert is None and not is_loopback(host):
            logger.warning("the SQL interface on %s takes passwords (API keys, JWTs) without "
                           "TLS: set SEMANTIC_SQL_TLS_CERT and SEMANTIC_SQL_TLS_KEY", host)
    attempt = app.state.semantic.start_compiling()
    limits = settings.limits
    attempt.done.wait(None if settings.embedded else limits.connect_timeout)
    if isinstance(attempt.error, WarehouseUnavailable):
        pass  # the app has said so ("starting without the warehouse ...")
    elif attempt.error is not None:  # the model contradicts the warehouse
        warehouse.close()
        raise attempt.error
    elif attempt.runtime is None:
        logger.warning("ClickHouse at %s has not answered within %g s; listening anyway (503 "
                       "until the model is compiled)", settings.location, limits.connect_timeout)
    return app, attempt.runtime, sql_url


def _reload_on_signal(state: State) -> None:
    def reload(signum: int, frame: object) -> None:
        try:
            state.reload()
        except ModelError as exc:
            logger.error("reload refused, the model has errors:\n%s",
                         "\n".join(issue.render() for issue in exc.issues))
        except SemanticError as exc:
            logger.error("reload failed: %s", exc.message)

    signal.signal(signal.SIGHUP, reload)


def _run(app: Litestar, settings: Settings, args: argparse.Namespace,
         started: Callable[[str], None]) -> int:
    import uvicorn

    sock = _bind(args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{sock.getsockname()[1]}"
    # On SIGTERM uvicorn stops accepting, gives requests in flight the grace period, cancels
    # the rest, runs the lifespan shutdown (the warehouse closes once an insert in flight is
    # done), then raises the signal again: exit through Python, so the server record is
    # removed, then end the process at once, which stops any query still running in a worker
    # thread (the embedded engine goes with the process; a ClickHouse server sees the
    # connection close and cancels it).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    grace = math.ceil(settings.limits.shutdown_grace)
    try:
        with ExitStack() as stack:
            if settings.embedded:
                stack.enter_context(recorded_server(settings.data_dir, url))
            started(url)
            # logging is already configured (server.observability.logs); the request log
            # replaces uvicorn's access log; a response goes out in one write
            config = uvicorn.Config(app, log_level=args.log_level.lower(), log_config=None,
                                    access_log=False, timeout_graceful_shutdown=grace,
                                    http=CoalescingHttpToolsProtocol)
            uvicorn.Server(config).run(sockets=[sock])
    except SystemExit:
        pass
    logger.info("stopped")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class ModelWatcher:
    """The loop of ``semantic dev``: poll the model file; on every save validate it, print the
    plan, apply it, switch, and say what now serves each endpoint."""


    def __init__(self, state: State, settings: Settings, url: str, stop: threading.Event,
                 poll: float = 0.5) -> None:
        self.state = state
        self.path = settings.model_path
        self.url = url
        self.stop = stop
        self.poll = poll
        self.seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def run(self) -> None:
        while not self.stop.wait(self.poll):
            stamp = self._stamp()
            if stamp is None or stamp == self.seen:
                continue
            self.seen = stamp
            try:
                self.changed()
            except ModelError as exc:
                print_issues(exc)
                warn("still serving the last good model")
            except SemanticError as exc:
                warn(f"error: {exc.message}; still serving the last good model")

    def changed(self) -> None:
        """Validate, plan, apply and switch; raise ``ModelError`` on a broken model."""

        say(f"{self.path} changed: validating")
        model = load_model(self.path)
        check_offline(model)
        warehouse = self.state.warehouse
        compiled = compile_against(model, warehouse)
        say("plan:")
        for step in migration_steps(compiled, warehouse, keep_unused=False):
            say(f"  {step.action:8} {step.table}: {step.detail}")
        started = time.perf_counter()
        self.state.apply(keep_unused=False, report=lambda line: say(f"  {line}"))
        runtime = self.state.runtime()
        ready = sum(r.qualified_table in runtime.ready for r in runtime.compiled.rollups)
        say(f"applied in {time.perf_counter() - started:.1f} s: {ready}/"
            f"{len(runtime.compiled.rollups)} rollups ready, {len(model.endpoints)} "
            f"endpoint(s) at {self.url}")
        for line in endpoint_routing(runtime):
            say(line)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    access = _access(settings, args.host, args.insecure)
    app, runtime, sql_url = _start(settings, access, args)
    state: State = app.state.semantic
    _reload_on_signal(state)

    def started(url: str) -> None:
        for line in summary(runtime, settings, url, access, sql_url):
            say(line)

    return _run(app, settings, args, started)


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:

    access = _access(settings, args.host, args.insecure)
    app, runtime, sql_url = _start(settings, access, args)
    state: State = app.state.semantic
    _reload_on_signal(state)
    stop = threading.Event()

    def started(url: str) -> None:
        for line in summary(runtime, settings, url, access, sql_url):
            say(line)
        say(f"watching {settings.model_path} for changes (every {args.poll:g} s)")
        watcher = ModelWatcher(state, settings, url, stop, args.poll)
        threading.Thread(target=watcher.run, name="model-watcher", daemon=True).start()

    try:
        return _run(app, settings, args, started)
    finally:
        stop.set()


COMMANDS = {"serve": cmd_serve, "dev": cmd_dev}
