"""The worker side of a run: what a task computes, and the state each worker process keeps for a
run.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cluster import (
    node_name,
)
from ..data import CellBlock, CellReader, DatasetInfo
from ..data.partitions import PartitionPlan
from ..kept import Kept
from ..output.folder import Store
from ..output.journal import Journal
from ..search import (
    PartitionResult,
    PartitionSearch,
)
from ..search.sandbox import SearchProcess
from ..spec import Job

log = logging.getLogger("hpctune")


@dataclass(frozen=True)
class TaskContext:
    """What every task needs; sent to each worker once."""

    job: Job
    info: DatasetInfo
    plan: PartitionPlan
    output: str
    run_id: str = field(default_factory=lambda: secrets.token_hex(8))
    """Each run has its own worker state: a restart on a reused cluster opens new journals."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.output, self.run_id)


class _WorkerState:
    """What a worker process keeps between the tasks of one run."""

    def __init__(self, ctx: TaskContext) -> None:
        search, test = ctx.job.search, ctx.job.data.test
        self.search_spec = search
        self.test_start = test.start if test else None
        self.window = ctx.job.data.train
        self.reader = CellReader(ctx.job.data, ctx.info)
        self.store = Store(Path(ctx.output))
        self.journal = Journal(self.store.parts, models=self.store.models)
        self.node = node_name()
        self._local = threading.local()
        self._children: list[SearchProcess] = []
        self._lock = threading.Lock()

    def first_task(self) -> bool:
        """Whether this is the first task of this thread in this run (its searcher to make,
        the data to open: slower than the next ones)."""
        first = not getattr(self._local, "started", False)
        self._local.started = True
        return first

    @property
    def search(self) -> PartitionSearch | SearchProcess:
        """This thread's searcher: with ``search.timeout``, a child process of its own."""
        searcher = getattr(self._local, "searcher", None)
        if searcher is None:
            spec = self.search_spec
            if spec.timeout:
                searcher = SearchProcess(spec, self.test_start, spec.timeout, self.window)
                with self._lock:
                    self._children.append(searcher)
            else:
                searcher = PartitionSearch(spec, test_start=self.test_start, window=self.window)
            self._local.searcher = searcher
        return searcher

    def close(self) -> None:
        self.journal.close()
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.close()


_WORKER_STATES: Kept[_WorkerState] = Kept(limit=1, close=_WorkerState.close, serial=True)
"""The state of the run this worker process serves (a new run closes the last one's)."""


def _worker_state(ctx: TaskContext) -> _WorkerState:
    return _WORKER_STATES.get(ctx.key, lambda: _WorkerState(ctx))


def shared_context(ctx: TaskContext) -> TaskContext:
    """The run's context as a task of its own, which the batch tasks depend on: a task rather
    than scattered data, so that it is recomputed if every worker holding it dies."""
    return ctx


def partition_rows(
    block: CellBlock, offset: int, members: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, target(s) and times of one partition whose cells start at ``offset`` in ``block``.

    A cell gives its time series; a group gives the rows of all its cells, ordered by time.
    """
    x = block.x[offset : offset + members.size]
    y = block.y[offset : offset + members.size]
    if members.size == 1:
        return x[0], y[0], times
    t = np.tile(times, members.size)
    order = np.argsort(t, kind="stable")
    y = y.reshape(-1, *y.shape[2:])  # (rows,) or (rows, targets)
    return x.reshape(-1, x.shape[-1])[order], y[order], t[order]


def run_batch(ctx: TaskContext, indices: list[int]) -> dict[str, Any]:
    """Compute and record the partitions ``indices`` (a Dask task). Returns each partition's
    status, the task's wall seconds, its CPU seconds (this thread's, where the searches run in
    it: the work, whatever other processes on the same cores take from the task; ``None`` where
    a child process runs them, with ``search.timeout``) and whether it was its worker thread's
    first in the run."""
    started = time.perf_counter()
    cpu_started = time.thread_time()
    state = _worker_state(ctx)
    first = state.first_task()
    plan = ctx.plan
    cells = [plan.cells(i) for i in indices]
    block = state.reader.read(np.concatenate(cells))
    statuses = []
    offset = 0
    for index, members in zip(indices, cells, strict=True):
        x, y, t = partition_rows(block, offset, members, ctx.info.times)
        offset += members.size
        result = state.search.run(index, x, y, t, node=state.node)
        record_result(state.journal, result)
        statuses.append((index, result.status))
    return {
        "statuses": statuses,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": (
            None if isinstance(state.search, SearchProcess) else time.thread_time() - cpu_started
        ),
        "first": first,
    }


def record_result(journal: Journal, result: PartitionResult) -> None:
    """Make one partition's result durable: its model appended to the process's model pack
    first, then its journal record, which says where the model is (:mod:`hpctune.output.packs`)."""
    journal.append(result.record(), model=result.model)


def warm_up() -> None:
    """Import what the first task needs, on each worker while the driver prepares. Workers
    forked from hpctune's forkserver have it already; spawned ones (``HPCTUNE_FORKSERVER=0``)
    import it here, and skops at their first model."""
    import dask_ml.model_selection  # noqa: F401
    import xarray  # noqa: F401
