"""What every command shares: output, the warehouse, and finding a running server."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from engine.model.compiled import CompiledModel
from semantic import load_model
from server.client import Client, answers, recorded_url
from server.operations.validation import check_offline
from server.runtime.compile import compile_against
from server.settings import DEFAULT_HOST, DEFAULT_PORT, Settings
from server.warehouse.availability import WarehouseUnavailable, engine_in_use, lock_message
from server.warehouse.statements import Warehouse


def open_warehouse(settings: Settings, admin: bool = False) -> Warehouse:
    """The warehouse with the configured limits; ``admin`` commands (apply, verify, repair,
    demo, load) wait as long for a query as for a statement (``SEMANTIC_COMMAND_TIMEOUT``)."""

    limits = settings.limits
    if admin:
        limits = replace(limits, query_timeout=limits.command_timeout)
    return Warehouse(settings.dsn, settings.location, limits=limits)


def running_server(args: argparse.Namespace, settings: Settings) -> Client | None:
    """The server to go through: ``--server``, or the live one recorded in the data directory
    when the embedded engine is used; None to open the engine in this process.

    Raises ``WarehouseUnavailable`` (saying why) when another process holds the embedded engine
    and no server is found to go through.
    """
    url = getattr(args, "server", None)
    if url:
        return Client(url)
    if not settings.embedded:
        return None
    url = recorded_url(settings.data_dir)
    if url is not None:
        return Client(url)
    if engine_in_use(settings.dsn):
        default = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
        if answers(default):  # a server started before servers recorded themselves
            return Client(default)
        raise WarehouseUnavailable(lock_message(settings.location))
    return None


def posted_model(settings: Settings, **extra: object) -> dict[str, object]:
    """The model file as the admin routes take it (issues are reported against its name)."""
    return {"model": settings.model_path.read_text(encoding="utf-8"),
            "file": str(settings.model_path), **extra}


@contextmanager
def compiled_model(settings: Settings) -> Iterator[tuple[CompiledModel, Warehouse]]:
    """The model checked and compiled against the warehouse, which is closed afterwards."""

    model = load_model(settings.model_path)
    check_offline(model)
    warehouse = open_warehouse(settings, admin=True)
    try:
        yield compile_against(model, warehouse), warehouse
    finally:
        warehouse.close()
