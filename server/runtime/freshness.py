"""Noticing writes that bypass the service, so the result cache never outlives them.

On a ClickHouse server other clients may insert into a source, mutate it or rebuild rollups.
A background thread reads the active parts of the sources' and the rollup database's tables
(count, rows, latest modification) every ``max_staleness`` seconds; any change is a new data
version. The embedded engine is opened by one process only, so it needs no watching.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from engine.dialect.system import PARTS_FINGERPRINT
from semantic.errors import SemanticError
from server.warehouse.statements import Warehouse

logger = logging.getLogger(__name__)


class PartsWatcher:
    """``stamp`` changes whenever the watched databases' active parts changed at the last
    check; ``check`` runs one check (the thread calls it every ``interval`` seconds)."""

    def __init__(self, warehouse: Warehouse, databases: Callable[[], Sequence[str]],
                 interval: float, on_change: Callable[[], None] = lambda: None) -> None:
        self.warehouse = warehouse
        self.databases = databases
        self.interval = interval
        #: called after a change is seen (rollups storing values of a changed dimension table
        #: are then found stale, within the same bound as cached answers)
        self.on_change = on_change
        self.stamp = 0
        self._fingerprint: object = None

    def check(self) -> bool:
        """Read the fingerprint; True (and a new ``stamp``) when it changed."""
        rows = self.warehouse.query(PARTS_FINGERPRINT,
                                    {"dbs": sorted(set(self.databases()))}).rows
        fingerprint = tuple(map(tuple, rows))
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        self.stamp += 1
        self.on_change()
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            try:
                self.check()
            except SemanticError as exc:
                # unknown state: treat it as a change, so nothing cached survives it
                self.stamp += 1
                logger.warning("checking the tables for outside writes failed: %s",
                               exc.message)
