"""What a worker process keeps between tasks: the one cache of open datasets, a run's worker
state, ``plan``'s sampling state and ``predict``'s loaded models.

A Dask task runs in a worker thread of a long-lived process; what it builds (an open dataset,
a reader, a loaded model) serves the next tasks of the same run in that process, and the
process's threads share it. Each use differs only in how many values it keeps and what is
done with one it drops, so one class holds the rule: values by key, the most recently used
``limit`` kept, ``close`` called on a value dropped (or built twice at once and not kept).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_EVERY: weakref.WeakSet[Kept[Any]] = weakref.WeakSet()


class Kept(Generic[V]):
    """Values by key, per process, shared by its threads.

    ``limit``: how many to keep (the least recently used goes first); ``close``: called on a
    value that goes. ``serial``: build values one at a time under the lock (for libraries that
    are not thread-safe, such as netCDF-C opening files); otherwise a value is built outside it,
    so that other keys are served meanwhile, and when two threads build the same key at once
    the first stored is kept and the other closed.
    """

    def __init__(
        self,
        limit: int | None = None,
        close: Callable[[V], object] | None = None,
        serial: bool = False,
    ) -> None:
        self.limit = limit
        self.close = close
        self.serial = serial
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        _EVERY.add(self)

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        """The value of ``key``, built by ``build()`` the first time."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            if self.serial:
                return self._store(key, build())
        value = build()
        with self._lock:
            if key in self._values:  # another thread built it meanwhile
                self._values.move_to_end(key)
                kept = self._values[key]
                self._drop([value])
                return kept
            return self._store(key, value)

    def clear(self) -> None:
        """Drop every value (closing each)."""
        with self._lock:
            dropped = list(self._values.values())
            self._values.clear()
        self._drop(dropped)

    def __len__(self) -> int:
        return len(self._values)

    def _store(self, key: Hashable, value: V) -> V:
        """Keep ``value`` under ``key`` (lock held); drop the least recently used beyond the
        limit."""
        self._values[key] = value
        dropped = []
        while self.limit is not None and len(self._values) > self.limit:
            dropped.append(self._values.popitem(last=False)[1])
        self._drop(dropped)
        return value

    def _drop(self, values: list[V]) -> None:
        if self.close is not None:
            for value in values:
                self.close(value)


def release_all() -> None:
    """Drop what every cache of this process keeps (open datasets closed, a run's journal
    closed): called when the worker threads of a run in this process have all ended, so
    that nothing of the run stays open in the caller's process (an open NetCDF file there
    can make netCDF-C refuse a later open of another file: "NetCDF: HDF error")."""
    for kept in list(_EVERY):
        kept.clear()
