"""Run a job: plan the partitions, spread them over the cluster in batches, record results.

Execution design (see benchmarks/RESULTS.md for the measurements behind it):

- A task is a *batch* of neighbouring partitions. The worker reads the batch's cells in one
  hyperslab, runs each partition's dask-ml search with the synchronous scheduler inside the task
  (no nested scheduling), and writes each result (model file, then journal record) as soon as it
  finishes.
- Batch sizes follow guided self-scheduling: the first tasks hold one partition each, to measure
  the cost of a partition; later batches aim at ``TARGET_TASK_SECONDS`` of work, and shrink as the
  run nears its end so that all workers finish together. The cost of a partition is read on the
  tasks that were not their worker thread's first: a first task opens the data and makes the
  searcher, and on many workers those would keep the estimate high and the batches small. Work
  is the task thread's CPU time where the searches run in it: on cores shared with other
  processes (more workers than cores, another job, hyperthreads) a task's wall time grows with
  the sharing and would make the tasks, and the scheduler's cost per partition, grow with it;
  ``WALL_PER_WORK`` bounds a task whose wall time its CPU does not explain (waiting on a file
  system).
- A batch that kills its worker or fails as a whole is split, and its partitions retried one by
  one, so that one bad cell does not take its neighbours down with it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..cluster import (
    node_name,
)
from ..errors import OutputError, RunStopped
from ..output.folder import Store
from ..output.journal import Journal
from ..search import (
    PartitionResult,
    describe_exception,
)
from .runner import POLL_SECONDS, Runner
from .tasks import (
    run_batch,
    shared_context,
)

log = logging.getLogger("hpctune")


TARGET_TASK_SECONDS = 2.0
"""Work per task once the cost of a partition is known: long enough to make the per-task
overhead negligible (the driver and the scheduler spend 10-20 ms of CPU on a task, reading its
hyperslab costs tens of ms), short enough for steady progress; near the end the guided share
makes tasks shorter, so that the workers finish together."""

WALL_PER_WORK = 10
"""A task's wall time at most, per second of the work it is sized for, whatever its CPU time:
tasks that wait (on a file system) stay short enough for steady progress."""

MIN_TASK_SECONDS = TARGET_TASK_SECONDS / 8
"""Work per task at least, near the end of the run too: the guided share alone shrinks the last
tasks to one partition each, and on tiny partitions those cost the driver and the scheduler
(~10 ms a task) more than their work. The workers finish at most about this much apart for it."""

GUIDED_FACTOR = 3
"""A batch holds at most remaining / (GUIDED_FACTOR x slots) partitions."""


class BatchRunner(Runner):
    """Feeds batches of partitions to the cluster and collects what comes back."""

    def setup(self) -> None:
        self.plan = self.ctx.plan
        self.pending: deque[int] = deque(self.todo)
        self.isolated: deque[int] = deque()
        self.in_flight: dict[Any, list[int]] = {}
        # wall and work (CPU) seconds of all tasks, and of those that were not their worker
        # thread's first
        self.task = _Cost()
        self.warm = _Cost()
        self.slots = max(1, self.execution.slots)
        self.chunk = self.ctx.job.data.chunk
        self._journal: Journal | None = None
        self._ctx_future: Any = None

    def run(self) -> None:
        from distributed import wait
        from distributed.client import FuturesCancelledError

        # A task rather than scattered data: if every worker holding it dies, it is recomputed.
        self._ctx_future = self.client.submit(
            shared_context, self.ctx, key=f"hpctune-context-{time.monotonic_ns()}", pure=False
        )
        try:
            while not self.stop.is_set() and (self.in_flight or self.pending or self.isolated):
                self._fill()
                try:
                    done, _ = wait(
                        list(self.in_flight), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED"
                    )
                except (TimeoutError, UnboundLocalError):
                    # UnboundLocalError: distributed's ``sync`` (2026.8) when the wait's timeout
                    # ends as a CancelledError on a loaded machine; nothing finished in time
                    done = set()
                except FuturesCancelledError:
                    done = {f for f in self.in_flight if f.status == "cancelled"}
                for future in done:
                    self._collect(future)
                self.progress.update(self.counts)
        finally:
            if self.in_flight:
                self.client.cancel(list(self.in_flight), force=True)
            if self._journal is not None:
                self._journal.close()

    def batch_size(self) -> int:
        """Partitions in the next task: one a task until as many partitions as slots were timed,
        then as many as fill :data:`TARGET_TASK_SECONDS` (at the cost of a partition in the
        tasks that were not a worker thread's first, once there are some), at most a guided
        share of those left, at least :data:`MIN_TASK_SECONDS`' worth, and at most
        ``data.chunk``."""
        if self.task.partitions < self.slots:
            return 1
        cost = self.warm if self.warm.partitions else self.task
        work = max(cost.work / cost.partitions, 1e-6)
        wall = max(cost.wall / cost.partitions, 1e-6)

        def worth(seconds: float) -> int:  # partitions in ``seconds`` of work, wall-bounded
            return int(min(seconds / work, seconds * WALL_PER_WORK / wall))

        guided = math.ceil(len(self.pending) / (GUIDED_FACTOR * self.slots))
        size = max(worth(MIN_TASK_SECONDS), min(worth(TARGET_TASK_SECONDS), guided))
        return max(1, min(size, self.chunk))

    def _next_batch(self) -> list[int]:
        if self.isolated:
            return [self.isolated.popleft()]
        size = self.batch_size()
        batch = [self.pending.popleft()]
        cells = self.plan.n_cells_of(batch[0])
        while self.pending and len(batch) < size:
            more = self.plan.n_cells_of(self.pending[0])
            if cells + more > self.chunk:
                break
            cells += more
            batch.append(self.pending.popleft())
        return batch

    def _fill(self) -> None:
        while len(self.in_flight) < 2 * self.slots and (self.pending or self.isolated):
            batch = self._next_batch()
            future = self.client.submit(
                run_batch,
                self._ctx_future,
                batch,
                pure=False,
                key=f"hpctune-batch-{batch[0]}-{time.monotonic_ns()}",
            )
            self.in_flight[future] = batch

    def _collect(self, future: Any) -> None:
        batch = self.in_flight.pop(future)
        try:
            outcome = batch_outcome(future, self.stop)
        except RunStopped:
            return  # its partitions are in the journal of the worker that computed them
        except OutputError:
            raise
        except Exception as exc:  # the task as a whole failed or its worker died
            if len(batch) > 1:
                self.isolated.extend(batch)
                log.warning(
                    "a batch of %d partitions failed (%s); retrying them one by one",
                    len(batch),
                    describe_exception(exc),
                )
                return
            self._record_failure(batch[0], exc)
            return
        self._count(batch, outcome)

    def _count(self, batch: list[int], outcome: dict[str, Any]) -> None:
        """A finished batch's statuses counted, its seconds in the cost of a partition."""
        self.task.add(outcome, len(batch))
        if not outcome["first"]:
            self.warm.add(outcome, len(batch))
        for _index, status in outcome["statuses"]:
            self.counts.add(status)

    def _record_failure(self, index: int, exc: BaseException) -> None:
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):
            reason = "its worker died each time it computed it (out of memory, or a crash)"
        else:
            reason = describe_exception(exc)
        if self._journal is None:
            self._journal = Journal(Store(Path(self.ctx.output)).parts)
        result = PartitionResult(index=index, status="failed", reason=reason, node=node_name())
        self._journal.append(result.record())
        self.counts.add("failed")


class _Cost:
    """Seconds of tasks and the partitions they held: wall time, and work, which is CPU time
    where the task reports it (its searches run in its thread), else wall time."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.work = 0.0
        self.partitions = 0

    def add(self, outcome: dict[str, Any], partitions: int) -> None:
        cpu = outcome.get("cpu_seconds")
        self.wall += outcome["seconds"]
        self.work += outcome["seconds"] if cpu is None else cpu
        self.partitions += partitions


def batch_outcome(future: Any, stop: threading.Event) -> Any:
    """The outcome of a batch the scheduler reported finished.

    The worker holding it may have died since (a preemption signals every process of the job at
    once): the scheduler then computes the batch again, and fetching its outcome waits for that.
    Not once the run is stopped: the batch is cancelled and :class:`RunStopped` raised. Its
    partitions were recorded in the dead worker's journal before it finished; computed again,
    they would be recorded twice, and the stopped run would wait for them past the grace the
    scheduler gives before it kills the job.

    One fetch, waited for in steps of :data:`POLL_SECONDS`, never cancelled: ``Future.result``
    with a timeout cancels the client's gather when the timeout ends it, and on a loaded driver
    (16 workers starting on 2 cores) every new fetch ran past the timeout in turn, or found the
    client's shared gather left cancelled (distributed 2026.8): the driver spun on fetches that
    could never finish while the workers sat idle.
    """
    import asyncio
    import concurrent.futures

    client = future.client
    fetch = asyncio.run_coroutine_threadsafe(
        client.gather([future], asynchronous=True), client.loop.asyncio_loop
    )
    while True:
        try:
            return fetch.result(timeout=POLL_SECONDS)[0]
        except concurrent.futures.TimeoutError:
            if stop.is_set():
                future.cancel()  # the fetch ends by itself, cancelled or when its data comes
                raise RunStopped("stopped while a lost batch was computed again") from None
