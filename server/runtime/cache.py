"""The result cache: encoded answers keyed by the normalized query, never stale.

An entry is the encoded body of an answer (JSON, or CSV, Parquet, Arrow up to 1 MiB as
ClickHouse wrote them) plus the table header, keyed by what the handler computed it from: the
normalized query (security filters are added to the query before it is planned, so they are
part of it), ``force_raw`` and the answer's shape and format. A hit is one dict lookup and no
encoding.

Never stale: every entry belongs to one *data version*. The version changes (and every entry
is dropped) on each write through this service's warehouse (ingestion, apply, repair, demo
loads: any statement that is not a query), on a model reload, and when the rollups' readiness
changes. An answer computed while the version changed is returned but not stored. Writers
that bypass the service (other clients of a ClickHouse server) are noticed by a background
check of the sources' and rollups' active parts every ``max_staleness`` seconds, which bounds
how stale an answer can be; ``max_staleness = 0`` turns the cache off for such warehouses.
The embedded engine can be opened by one process only, so there every write goes through us.

Concurrent identical misses run the query once (single flight); memory is bounded in bytes
(oldest entries are evicted first).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

#: default bound of the cache (``SEMANTIC_CACHE_BYTES``)
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: default bound of staleness for writers that bypass the service (``SEMANTIC_CACHE_MAX_STALENESS``)
DEFAULT_MAX_STALENESS = 1.0
#: bytes an entry costs besides its body (key, entry object, dict slot): an estimate
ENTRY_OVERHEAD = 512
#: bytes a kept value costs (list slot plus a small Python object): an estimate
VALUE_OVERHEAD = 64
#: whole queries remembered as asked once (``ResultCache.asked_before``)
SIGHTED_MAX = 4096


@dataclass(frozen=True, slots=True)
class Cached:
    """An encoded answer: the body, the table it was read from (for the header), and what
    monitoring counts per answer (every table read, rows, rollup, source)."""

    body: bytes
    table: str
    tables: tuple[str, ...] = ()
    rows: int = 0
    rollup: str | None = None
    source: str = ""
    #: the answer's values column by column, kept (instead of a body) to cut ranges from
    #: (``engine.serving.slices``), and whether rows beyond them were left out
    values: tuple[list[Any], ...] | None = None
    truncated: bool = False
    #: when each kept row's time bucket starts (epoch seconds), to cut ranges by
    starts: tuple[float, ...] | None = None

    @property
    def size(self) -> int:
        kept = (sum(len(column) for column in self.values) + len(self.starts or ())) * \
            VALUE_OVERHEAD if self.values is not None else 0
        return len(self.body) + kept + sys.getsizeof(self.table) + ENTRY_OVERHEAD


class _Flight:
    """A computation in progress that identical misses wait for."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Cached | None = None
        self.error: BaseException | None = None


class ResultCache:
    """Encoded answers by key, bounded in bytes, dropped whole when the data version changes.

    ``max_bytes = 0`` disables it: ``fetch`` then always computes (no single flight either).
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES,
                 stamp: Callable[[], Hashable] | None = None) -> None:
        """``stamp`` returns the data version's outside parts (warehouse writes, model
        generation, outside-writer checks): any change drops every entry."""
        self.max_bytes = max(0, max_bytes)
        self._stamp = stamp
        self._seen: Hashable = stamp() if stamp is not None else None
        self.version = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        #: misses answered by cutting a range from a kept whole answer (``server.service.answers``)
        self.cuts = 0
        self.size_bytes = 0
        self._entries: dict[Hashable, Cached] = {}
        self._flights: dict[tuple[int, Hashable], _Flight] = {}
        self._lock = threading.Lock()
        #: whole queries a range was asked of once (``asked_before``), oldest first
        self._sighted: dict[Hashable, None] = {}

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def entries(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        """Counts for monitoring: hits, misses (and those cut from a kept whole answer),
        entries, bytes held, bound, evictions."""
        return {"hits": self.hits, "misses": self.misses, "cuts": self.cuts,
                "entries": self.entries, "bytes": self.size_bytes, "max_bytes": self.max_bytes,
                "evictions": self.evictions, "version": self.version}

    def _current(self) -> int:
        """The data version, moved on (entries dropped) if the stamp changed."""
        if self._stamp is not None:
            stamp = self._stamp()
            if stamp != self._seen:
                with self._lock:
                    if stamp != self._seen:
                        self._seen = stamp
                        self._drop()
        return self.version

    def _drop(self) -> None:
        self.version += 1
        self._entries.clear()
        self.size_bytes = 0

    def get(self, key: Hashable) -> Cached | None:
        """The stored answer for ``key`` at the current version, or None (not counted: a
        ``fetch`` follows a miss)."""
        if not self.enabled:
            return None
        self._current()
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
        return found

    def asked_before(self, key: Hashable) -> bool:
        """Whether a range of the whole query ``key`` was asked before (and note that it is
        now). A whole answer is kept from the second range asked of it on: a query asked once
        (an analyst exploring, a BI tool) pays neither the whole query's plan nor its run."""
        with self._lock:
            if key in self._sighted:
                return True
            if len(self._sighted) >= SIGHTED_MAX:
                del self._sighted[next(iter(self._sighted))]
            self._sighted[key] = None
            return False

    def invalidate(self, reason: str = "") -> None:
        """A new data version: drop every entry; answers being computed are not stored."""
        with self._lock:
            self._drop()
        if reason:
            logger.debug("result cache invalidated: %s", reason)

    def fetch(self, key: Hashable, compute: Callable[[], Cached]) -> Cached:
        """The answer for ``key``: stored, being computed by another caller (wait for it), or
        computed now and stored unless the data version changed meanwhile."""
        if not self.enabled:  # off: every request runs its own query
            self.misses += 1
            return compute()
        version = self._current()
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            return found
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self.hits += 1
                return found
            # flights are per version: a caller that saw a newer version must not take an
            # answer whose query began before the write that made it
            flight_key = (version, key)
            flight = self._flights.get(flight_key)
            leader = flight is None
            if flight is None:
                flight = self._flights[flight_key] = _Flight()
            self.misses += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result
        try:
            result = compute()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.result = result
            self._store(key, result, version)
            return result
        finally:
            with self._lock:
                self._flights.pop(flight_key, None)
            flight.done.set()

    def miss(self) -> int:
        """Count a miss answered outside ``fetch`` (an answer streamed as it is read); the
        data version it is computed at, for ``store``."""
        version = self._current()
        self.misses += 1
        return version

    def store(self, key: Hashable, result: Cached, version: int) -> None:
        """Keep an answer computed outside ``fetch`` at data ``version`` (from ``miss``),
        unless the version has changed since."""
        self._store(key, result, version)

    def _store(self, key: Hashable, result: Cached, version: int) -> None:
        size = result.size
        if not self.enabled or size > self.max_bytes:
            return
        current = self._current()
        with self._lock:
            if version != current or version != self.version:  # data changed meanwhile
                return
            previous = self._entries.pop(key, None)
            if previous is not None:
                self.size_bytes -= previous.size
            while self._entries and self.size_bytes + size > self.max_bytes:
                oldest = next(iter(self._entries))
                self.size_bytes -= self._entries.pop(oldest).size
                self.evictions += 1
            self._entries[key] = result
            self.size_bytes += size
