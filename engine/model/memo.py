"""Values remembered per owner (a compiled source) and *shape* (what a value depends on), for
work that depends on a query's shape alone: its routing's reading, its statement's text."""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class ShapeMemo(Generic[T]):
    """Values by owner and shape. A shape means the same value only within one owner (it must
    allow weak references), and the memo does not keep owners alive. Bounded: emptied when
    ``size`` entries are held. Safe for threads without a lock: each step is one dict
    operation, and two threads working out one shape at once store equal values.

    >>> class Source: ...
    >>> memo, source = ShapeMemo[str](), Source()
    >>> memo.get(("a",), source) is None
    True
    >>> memo.put(("a",), source, "A")
    >>> memo.get(("a",), source), memo.get(("a",), Source())
    ('A', None)
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        # (id(owner), shape) -> (weak reference to owner, value): an id may be reused once
        # its object is gone, so a hit must find the same owner still alive behind the
        # reference
        self._values: dict[tuple[int, Hashable], tuple[weakref.ref[object], T]] = {}

    def get(self, shape: Hashable, owner: object) -> T | None:
        found = self._values.get((id(owner), shape))
        if found is None or found[0]() is not owner:
            return None
        return found[1]

    def put(self, shape: Hashable, owner: object, value: T) -> None:
        if len(self._values) >= self.size:
            self._values.clear()
        self._values[(id(owner), shape)] = (weakref.ref(owner), value)

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)
