"""Run a job: plan the partitions, spread them over the cluster in batches, record results.

Execution design (see benchmarks/RESULTS.md for the measurements behind it):

- A task is a *batch* of neighbouring partitions. The worker reads the batch's cells in one
  hyperslab, runs each partition's dask-ml search with the synchronous scheduler inside the task
  (no nested scheduling), and writes each result (model file, then journal record) as soon as it
  finishes.
- Batch sizes follow guided self-scheduling: the first tasks hold one partition each, to measure
  the cost of a partition; later batches aim at ``TARGET_TASK_SECONDS`` of work, and shrink as the
  run nears its end so that all workers finish together.
- A batch that kills its worker or fails as a whole is split, and its partitions retried one by
  one, so that one bad cell does not take its neighbours down with it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import math
import os
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np

from . import startup
from .cluster import (
    ClusterHandle,
    ExecutionPlan,
    choose_granularity,  # noqa: F401  (hpctune.execute.choose_granularity stays importable)
    choose_mode,
    existing_cluster,
    node_name,
    place,
    plan_execution,
    prepare_local_workers,
    start_cluster,
    threads_possible,
)
from .data import CellBlock, CellReader, DatasetInfo, inspect, open_dataset, space_coordinates
from .errors import OutputError, RunStopped
from .partitions import PartitionPlan, make_plan, slice_indices
from .progress import Counts, Progress
from .sandbox import SearchProcess
from .schedulers import registry
from .search import (
    PartitionResult,
    PartitionSearch,
    SearchTimeout,
    build_estimator,
    check_candidates,
    check_params,
    check_scoring,
    describe_exception,
    n_candidates,
    n_folds,
    work_counts,
)
from .spec import Job
from .store import Journal, Store, count_statuses

log = logging.getLogger("hpctune")

TARGET_TASK_SECONDS = 1.0
"""Work per task once the cost of a partition is known: long enough to make the per-task
overhead (scheduling, opening the hyperslab) negligible, short enough for steady progress."""

GUIDED_FACTOR = 3
"""A batch holds at most remaining / (GUIDED_FACTOR x slots) partitions."""

POLL_SECONDS = 0.5
"""How long the driver waits on the cluster before it looks at the stop event again."""


# --------------------------------------------------------------------------- preparation


@dataclass
class Prepared:
    """A validated job with its data's metadata and partition plan; nothing written yet."""

    job: Job
    info: DatasetInfo
    plan: PartitionPlan
    coords: dict[str, tuple[np.ndarray, dict]]

    def describe(self) -> dict[str, Any]:
        job = self.job
        times = self.info.times
        if job.data.test is not None and self.info.is_datetime:
            start = np.datetime64(job.data.test.start, "ns")
            train_times, n_test_steps = times[times < start], int((times >= start).sum())
        else:
            train_times, n_test_steps = times, 0
        folds = n_folds(job.search.cv, train_times if self.info.is_datetime else None)
        return {
            "name": job.name,
            "output": job.output,
            "data": self.info.summary(),
            "partitions": {
                "by": job.partition.by,
                "count": self.plan.size,
                "train_steps": int(train_times.size),
                "test_steps": n_test_steps,
            },
            "search": work_counts(job.search, self.plan.size, folds),
        }


def check_data(job: Job) -> Prepared:
    """Check the spec against the data, reading metadata only: the partitions are known after
    it, and the run's plan can be decided (:func:`run`)."""
    ds = open_dataset(job.data)
    # Metadata reads stay in this process: never on a default distributed client of the caller.
    with dask.config.set(scheduler="sync"):
        try:
            info = inspect(job, ds)
            plan = make_plan(job.partition.by, info.n_cells, ds, info.space_dims)
            coords = {} if plan.grouped else space_coordinates(ds, info.space_dims)
        finally:
            ds.close()
    return Prepared(job=job, info=info, plan=plan, coords=coords)


def check_search(prepared: Prepared) -> Prepared:
    """Check the estimator, its parameters and scoring (imports scikit-learn: 1.5 s); returns
    ``prepared``, now checked through."""
    search = prepared.job.search
    estimator = build_estimator(search)
    check_params(search, estimator)
    check_candidates(search, estimator)
    check_scoring(search)
    return prepared


def prepare(job: Job) -> Prepared:
    """Check the spec against the data and the estimator, reading metadata only."""
    return check_search(check_data(job))


# --------------------------------------------------------------------------- worker side


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
        self.reader = CellReader(ctx.job.data, ctx.info)
        self.store = Store(Path(ctx.output))
        self.journal = Journal(self.store.parts)
        self.node = node_name()
        self._local = threading.local()
        self._children: list[SearchProcess] = []
        self._lock = threading.Lock()

    @property
    def search(self) -> PartitionSearch | SearchProcess:
        """This thread's searcher: with ``search.timeout``, a child process of its own."""
        searcher = getattr(self._local, "searcher", None)
        if searcher is None:
            spec = self.search_spec
            if spec.timeout:
                searcher = SearchProcess(spec, self.test_start, spec.timeout)
                with self._lock:
                    self._children.append(searcher)
            else:
                searcher = PartitionSearch(spec, test_start=self.test_start)
            self._local.searcher = searcher
        return searcher

    def close(self) -> None:
        self.journal.close()
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.close()


_WORKER_STATES: dict[tuple[str, str], _WorkerState] = {}
_WORKER_STATES_LOCK = threading.Lock()


def _worker_state(ctx: TaskContext) -> _WorkerState:
    with _WORKER_STATES_LOCK:
        state = _WORKER_STATES.get(ctx.key)
        if state is None:
            for old in _WORKER_STATES.values():
                old.close()
            _WORKER_STATES.clear()
            state = _WORKER_STATES[ctx.key] = _WorkerState(ctx)
        return state


def _context(ctx: TaskContext) -> TaskContext:
    return ctx


def partition_rows(
    block: CellBlock, offset: int, members: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, target and times of one partition whose cells start at ``offset`` in ``block``.

    A cell gives its time series; a group gives the rows of all its cells, ordered by time.
    """
    x = block.x[offset : offset + members.size]
    y = block.y[offset : offset + members.size]
    if members.size == 1:
        return x[0], y[0], times
    t = np.tile(times, members.size)
    order = np.argsort(t, kind="stable")
    return x.reshape(-1, x.shape[-1])[order], y.reshape(-1)[order], t[order]


def run_batch(ctx: TaskContext, indices: list[int]) -> dict[str, Any]:
    """Compute and record the partitions ``indices`` (a Dask task)."""
    started = time.perf_counter()
    state = _worker_state(ctx)
    plan = ctx.plan
    cells = [plan.cells(i) for i in indices]
    block = state.reader.read(np.concatenate(cells))
    statuses = []
    offset = 0
    for index, members in zip(indices, cells, strict=True):
        x, y, t = partition_rows(block, offset, members, ctx.info.times)
        offset += members.size
        result = state.search.run(index, x, y, t, node=state.node)
        record_result(state.store, state.journal, plan, result)
        statuses.append((index, result.status))
    return {"statuses": statuses, "seconds": time.perf_counter() - started}


def record_result(
    store: Store, journal: Journal, plan: PartitionPlan, result: PartitionResult
) -> None:
    """Make one partition's result durable: its model file first, then its journal record."""
    if result.model is not None:
        store.write_model(plan.model_name(result.index), result.model)
    journal.append(result.record())


# --------------------------------------------------------------------------- driver side


@dataclass
class RunSummary:
    name: str
    output: str
    total: int
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    resumed: int = 0
    pending: int = 0
    seconds: float = 0.0
    cluster: str = ""
    granularity: str = ""
    """``partition``: a task computes whole searches; ``fit``: each fit is a task."""
    stopped_by: str | None = None
    results: Any = field(default=None, repr=False)
    """The results as an xarray Dataset (after a whole run), else None."""
    slice: str | None = None
    """``I/N`` for a run of one slice (``--slice``), which writes its partitions, not
    results.nc."""
    merge_command: str | None = None
    """A slice's next step, the command that writes results.nc once every slice has run."""

    @property
    def exit_code(self) -> int:
        if self.stopped_by is not None:
            return 128 + int(getattr(signal, self.stopped_by, signal.SIGTERM))
        return 3 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "output": self.output,
            "total": self.total,
            "ok": self.ok,
            "skipped": self.skipped,
            "failed": self.failed,
            "resumed": self.resumed,
            "pending": self.pending,
            "seconds": round(self.seconds, 3),
            "cluster": self.cluster,
            "granularity": self.granularity,
            "stopped_by": self.stopped_by,
            "exit_code": self.exit_code,
            "slice": self.slice,
            "results_written": self.results is not None,
            "merge_command": self.merge_command,
        }

    def line(self) -> str:
        name = f"{self.name} slice {self.slice}" if self.slice else self.name
        text = (
            f"{name}: {self.ok} ok, {self.skipped} skipped, {self.failed} failed "
            f"({self.resumed} resumed) of {self.total} partitions in {self.seconds:.1f} s"
        )
        if self.pending:
            text += f"; {self.pending} pending"
        if self.stopped_by:
            text += f"; stopped by {self.stopped_by}, run again to resume"
        if self.slice is None:
            return text + f" -> {self.output}"
        merge = self.merge_command or "hpctune merge JOB"
        return (
            text + f" -> the slice's partitions in {self.output}, not results.nc: once every "
            f"slice has run, write it with: {merge}"
        )


class Runner:
    """Computes the partitions ``todo`` of a run on a cluster, counting what finishes into
    ``counts`` and showing it on ``progress``, until done or ``stop`` is set; its tasks at once
    follow ``execution`` (the run's plan: its slots, threads or processes)."""

    def __init__(
        self,
        handle: ClusterHandle,
        ctx: TaskContext,
        todo: np.ndarray,
        counts: Counts,
        progress: Progress,
        stop: threading.Event,
        execution: ExecutionPlan,
    ) -> None:
        self.handle = handle
        self.execution = execution
        self.client = handle.client
        self.ctx = ctx
        self.todo = [int(i) for i in todo]
        self.counts = counts
        self.progress = progress
        self.stop = stop
        self.setup()

    def setup(self) -> None:
        """The runner's own state, made at the end of the constructor."""

    def run(self) -> None:
        raise NotImplementedError


class BatchRunner(Runner):
    """Feeds batches of partitions to the cluster and collects what comes back."""

    def setup(self) -> None:
        self.plan = self.ctx.plan
        self.pending: deque[int] = deque(self.todo)
        self.isolated: deque[int] = deque()
        self.in_flight: dict[Any, list[int]] = {}
        self.task_seconds = 0.0
        self.task_partitions = 0
        self.slots = max(1, self.execution.slots)
        self.chunk = self.ctx.job.data.chunk
        self._journal: Journal | None = None
        self._ctx_future: Any = None

    def run(self) -> None:
        from distributed import wait
        from distributed.client import FuturesCancelledError

        # A task rather than scattered data: if every worker holding it dies, it is recomputed.
        self._ctx_future = self.client.submit(
            _context, self.ctx, key=f"hpctune-context-{time.monotonic_ns()}", pure=False
        )
        try:
            while not self.stop.is_set() and (self.in_flight or self.pending or self.isolated):
                self._fill()
                try:
                    done, _ = wait(
                        list(self.in_flight), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED"
                    )
                except TimeoutError:
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
        if self.task_partitions < self.slots:
            return 1
        per_partition = self.task_seconds / self.task_partitions
        by_time = int(TARGET_TASK_SECONDS / max(per_partition, 1e-6))
        guided = math.ceil(len(self.pending) / (GUIDED_FACTOR * self.slots))
        return max(1, min(by_time, guided, self.chunk))

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
        self.task_seconds += outcome["seconds"]
        self.task_partitions += len(batch)
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


def batch_outcome(future: Any, stop: threading.Event) -> Any:
    """The outcome of a batch the scheduler reported finished.

    The worker holding it may have died since (a preemption signals every process of the job at
    once): the scheduler then computes the batch again, and fetching its outcome waits for that.
    Not once the run is stopped: the batch is cancelled and :class:`RunStopped` raised. Its
    partitions were recorded in the dead worker's journal before it finished; computed again,
    they would be recorded twice, and the stopped run would wait for them past the grace the
    scheduler gives before it kills the job.
    """
    while True:
        try:
            return future.result(timeout=POLL_SECONDS)
        except TimeoutError:
            if stop.is_set():
                future.cancel()
                raise RunStopped("stopped while a lost batch was computed again") from None


def _executing_keys(dask_worker: Any = None) -> list[Any]:
    """Keys of the tasks a worker is executing now (run on each worker)."""
    return [task.key for task in dask_worker.state.executing]


@functools.cache
def _cluster_faults() -> tuple[type[BaseException], ...]:
    """What a lost worker raises in the client (imported when first needed: a run on worker
    threads never imports distributed)."""
    from distributed import KilledWorker
    from distributed.client import FuturesCancelledError
    from distributed.comm.core import CommClosedError

    return (KilledWorker, FuturesCancelledError, CommClosedError)


async def _end_process() -> None:
    """Kill this worker process; a coroutine, so that ``client.run`` need not wait for it."""
    os.kill(os.getpid(), signal.SIGKILL)


def _known_keys(keys: list[Any], dask_scheduler: Any = None) -> list[Any]:
    """The keys the scheduler still holds (run on the scheduler)."""
    return [key for key in keys if key in dask_scheduler.tasks]


class SearchGraphRunner(Runner):
    """Runs each partition's dask-ml search graph on the cluster: its fits and scores are tasks
    spread over all workers (dask-ml still fits a shared pipeline step once per fold). The
    partition's rows are read here and travel inside the graph once; results are recorded here.
    On worker threads (the plan's ``processes`` false) the graphs run on dask's local scheduler
    in this process.
    """

    #: Searches in flight at once, at most (each is one driver thread waiting on its graph).
    MAX_CONCURRENT = 64

    def setup(self) -> None:
        self._io = threading.Lock()
        self._local = threading.local()
        self.retry_at_end: list[int] = []
        self._skops = threading.Lock()
        self._skops_started = False
        self._ended = False  # under _io: no read nor record starts any more

    def concurrency(self) -> int:
        search = self.ctx.job.search
        per_search = n_candidates(search) * (n_folds(search.cv) or 1)
        wanted = math.ceil(2 * max(1, self.execution.slots) / per_search)
        return max(1, min(len(self.todo), max(2, wanted), self.MAX_CONCURRENT))

    def run(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        job, info = self.ctx.job, self.ctx.info
        test = job.data.test
        self.reader = CellReader(job.data, info)
        self.search = PartitionSearch(job.search, test_start=test.start if test else None)
        self.store = Store(Path(self.ctx.output))
        self.journal = Journal(self.store.parts)
        nodes = self.client.run(node_name).values() if self.client is not None else ()
        self.nodes = ",".join(sorted(set(nodes))) or node_name()
        pool = ThreadPoolExecutor(self.concurrency(), thread_name_prefix="hpctune-search")
        pending = {pool.submit(self._one, index) for index in self.todo}
        try:
            while pending and not self.stop.is_set():
                done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    status = future.result()
                    if status is not None:
                        self.counts.add(status)
                self.progress.update(self.counts)
            for index in self.retry_at_end:
                status = None if self.stop.is_set() else self._one(index, last_try=True)
                if status is not None:
                    self.counts.add(status)
                self.progress.update(self.counts)
        finally:
            pool.shutdown(wait=not self.stop.is_set(), cancel_futures=True)
            # Stopped, the searches still waiting for a fit are not waited for (the process
            # may end under them, hpctune.startup.end): once a read or record in progress
            # ends, none starts again, so that no thread is inside NetCDF or writing a
            # partition when the process ends.
            with self._io:
                self._ended = True
                self.journal.close()

    def _one(self, index: int, last_try: bool = False) -> str | None:
        if self.stop.is_set():
            return None
        members = self.ctx.plan.cells(index)
        with self._io:
            if self._ended:
                return None
            block = self.reader.read(members)
        x, y, t = partition_rows(block, 0, members, self.ctx.info.times)
        timeout = self.ctx.job.search.timeout
        self._local.deadline = None if timeout is None else time.monotonic() + timeout
        self._local.retry = False
        self._local.graphs = 0
        started = time.monotonic()
        result = self.search.run(index, x, y, t, node=self.nodes, scheduler=self._get)
        elapsed = time.monotonic() - started
        log.debug("partition %d: %s after %.1f s %s", index, result.status, elapsed, result.reason)
        if self._local.retry and not last_try and not self.stop.is_set():
            # Timed out, or lost with a worker: its tasks may have waited behind another
            # search's hung fit, or shared a worker ended for that one. Try it again at the
            # end, alone on the cluster, before calling it failed.
            with self._io:
                self.retry_at_end.append(index)
            return None
        if self.stop.is_set() and result.status == "failed":
            return None  # cut short by the stop, not a failure of the partition
        with self._io:
            if self._ended:
                return None
            record_result(self.store, self.journal, self.ctx.plan, result)
        return result.status

    def _import_skops(self) -> None:
        """The models are written here: import skops (0.8 CPU s: it imports every scikit-learn
        module) beside the refit, the search's second graph, which keeps one worker busy and,
        when the search runs alone, leaves the others idle. Not earlier: until the first graph
        is submitted this process imports dask-ml and builds the graph, and the two imports
        would share the GIL, the first fit waiting for both; during the fits it takes a core
        from them (benchmarks/RESULTS.md). A search with no second graph imports skops when it
        writes its model."""
        with self._skops:
            if self._skops_started:
                return
            self._skops_started = True
        threading.Thread(
            target=importlib.import_module, args=("skops.io",), name="hpctune-import", daemon=True
        ).start()

    def _get(self, dsk: Any, keys: Any, **_: Any) -> Any:
        """dask-ml's graph on the cluster. Called as a plain function so that dask-ml does not
        take its path for Clients, which retries a failing task without end."""
        self._local.graphs += 1
        if self._local.graphs > 1:  # the refit
            self._import_skops()
        if not self.execution.processes:  # worker threads: never a search timeout
            return self.handle.pool.get(dsk, keys, stop=self.stop)
        from distributed import wait

        try:
            deadline = getattr(self._local, "deadline", None)
            if deadline is None:
                return self.client.get(dsk, keys, sync=True)
            futures = self.client.get(dsk, keys, sync=False)
            try:
                wait(futures, timeout=max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                self._stop_tasks(futures, set(dsk))
                self._local.retry = True
                raise SearchTimeout(self.ctx.job.search.timeout or 0) from None
            return self.client.gather(futures)
        except _cluster_faults():
            self._local.retry = True  # lost with a worker, not failed by its own fit
            raise

    def _stop_tasks(self, futures: Any, graph_keys: set[Any]) -> None:
        """Cancel a search's tasks and end the worker processes still executing one of them:
        a fit stuck in compiled code keeps its thread whatever is cancelled. Their nannies
        start fresh worker processes, as after any worker death."""
        keys = {future.key for future in futures}
        executing = self.client.run(_executing_keys)
        stuck = [
            worker for worker, running in executing.items() if graph_keys.intersection(running)
        ]
        self.client.cancel(futures)
        if stuck:
            log.warning("ending %d worker(s) stuck in a search past its timeout", len(stuck))
            self.client.run(_end_process, workers=stuck, wait=False)
        # The same search submitted again has the same keys: wait until these are forgotten.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.client.run_on_scheduler(
            _known_keys, keys=list(keys)
        ):
            time.sleep(0.1)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, caught: list[str]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGUSR1 (the scheduler's warning before the walltime) stop the run:
    no new partitions are started, finished ones are already on disk."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if not caught:
            caught.append(signal.Signals(signum).name)
        stop.set()

    wanted = [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1]
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_prepared(
    prepared: Prepared,
    *,
    restart: bool = False,
    part: tuple[int, int] | None = None,
    client: Any = None,
    progress: Progress | None = None,
    start: ClusterStart | None = None,
) -> RunSummary:
    """Run (or resume) the searches of ``prepared``; the whole run writes results.nc at the end.

    ``start``: the cluster of the run's plan (:func:`run`); without it, the plan is decided
    here. A stop signal from here to the return stops the run in order
    (:func:`_stop_on_signals`): arriving before the searches begin, no cluster starts; during
    them, no partition starts; while the cluster closes or results.nc is written, those end
    first. ``start``'s cluster is closed before the return."""
    if start is None:
        left = partitions_left(prepared.job, prepared.plan.size, part, restart)
        start = ClusterStart(prepared.job, decide(prepared.job, left, client), client)
    stop = threading.Event()
    caught: list[str] = []
    with _stop_on_signals(stop, caught):
        try:
            summary = _run_prepared(prepared, restart, part, progress, start, stop)
        finally:
            start.close()
    summary.stopped_by = caught[0] if caught else None
    return summary


def _run_prepared(
    prepared: Prepared,
    restart: bool,
    part: tuple[int, int] | None,
    progress: Progress | None,
    start: ClusterStart,
    stop: threading.Event,
) -> RunSummary:
    job, plan = prepared.job, prepared.plan
    execution = start.plan
    progress = progress or Progress(enabled=False)
    started = time.monotonic()
    store = Store(job.output_dir)
    locks = store.lock(part)
    try:
        store.prepare(job, plan.size, restart, prepared.info.summary())
        mine = slice_indices(plan.size, part)
        finished = store.finished()
        # as when the plan was decided, unless another run finished partitions in between:
        # then fewer are left, and the plan stands
        todo = np.array([i for i in mine if int(i) not in finished], dtype=np.int64)
        counts = Counts(total=int(mine.size), resumed=int(mine.size - todo.size))
        summary = RunSummary(name=job.name, output=str(store.root), total=counts.total)
        if part is not None:
            summary.slice = f"{part[0]}/{part[1]}"
        if counts.resumed:
            progress.message(
                f"resuming: {counts.resumed} of {counts.total} partitions already done"
            )
        startup.work_begins()
        if todo.size and not stop.is_set():
            for note in execution.notes:
                log.warning("%s", note)
            ctx = TaskContext(job=job, info=prepared.info, plan=plan, output=str(store.root))
            handle = start.handle()
            summary.cluster = handle.description
            progress.message(
                f"{handle.description}"
                + (f"; dashboard {handle.dashboard}" if handle.dashboard else "")
            )
            summary.granularity = execution.granularity
            runner: type[Runner] = RUNNERS[execution.granularity]
            runner(handle, ctx, todo, counts, progress, stop, execution).run()
        progress.update(counts, force=True)
        progress.close()
        earlier = count_statuses(finished[int(i)] for i in mine if int(i) in finished)
        summary.ok = counts.ok + earlier["ok"]
        summary.skipped = counts.skipped + earlier["skipped"]
        summary.failed = counts.failed
        summary.resumed = counts.resumed
        summary.pending = counts.remaining
        if part is None and not stop.is_set():
            summary.results = store.write_results(job, plan, prepared.coords)
        summary.seconds = time.monotonic() - started
        return summary
    finally:
        for lock in locks:
            lock.release()


RUNNERS: dict[str, type[Runner]] = {"partition": BatchRunner, "fit": SearchGraphRunner}
"""The runner of each granularity of the plan."""


def _warm_up() -> None:
    """Import what the first task needs, on each worker while the driver prepares. Workers
    forked from hpctune's forkserver have it already; spawned ones (``HPCTUNE_FORKSERVER=0``)
    import it here, and skops at their first model file."""
    import dask_ml.model_selection  # noqa: F401
    import xarray  # noqa: F401


def partitions_left(job: Job, size: int, part: tuple[int, int] | None, restart: bool) -> int:
    """How many of this run's partitions have no finished record yet (a read-only scan of the
    journals; all of them on ``restart``)."""
    mine = slice_indices(size, part)
    if restart:
        return int(mine.size)
    finished = Store(job.output_dir).finished()
    return sum(1 for i in mine if int(i) not in finished)


def decide(
    job: Job, left: int, client: Any = None, allocation: Any = None, mode: str | None = None
) -> ExecutionPlan:
    """The run's plan for ``left`` partitions: its placement (the caller's ``client``, else the
    mode of ``job`` in ``allocation``), then :func:`plan_execution`."""
    if mode is None:
        if client is None:
            allocation = registry.detect_allocation()
        mode = "external" if client is not None else choose_mode(job, allocation)
    return plan_execution(job, place(job, mode, allocation, client=client), left)


class ClusterStart:
    """The cluster of a run's ``plan``, started by :meth:`begin` in a thread (a local run, while
    the driver checks the estimator) or by :meth:`handle` when the run needs it.

    Starting worker processes and importing scikit-learn and dask-ml for them takes 2-3 s of
    CPU (once, in the forkserver, which began at the start of the run), about as long as the
    driver's own import of scikit-learn: done side by side, a run's first searches begin that
    much sooner (benchmarks/RESULTS.md). Allocation and jobqueue workers start after every
    check.
    """

    def __init__(self, job: Job, plan: ExecutionPlan, client: Any = None) -> None:
        self.job = job
        self.plan = plan
        self._client = client
        self._stack = contextlib.ExitStack()
        self._warming: list[Any] = []
        self._started: Any = None

    def begin(self) -> None:
        """Start the cluster in a thread; :meth:`handle` waits for it."""
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(1, thread_name_prefix="hpctune-cluster-start")
        self._started = pool.submit(self._start, warm=True)
        pool.shutdown(wait=False)

    def _start(self, warm: bool = False) -> ClusterHandle:
        if warm and self.plan.processes:
            # SIGINT is the driver's own (its main thread's handler stops the run): blocked in
            # this thread, it is blocked in the cluster's threads and the worker processes
            # they spawn, which a Ctrl-C at the terminal would otherwise end with a
            # KeyboardInterrupt traceback each (forked ones have the forkserver's mask)
            from . import forkserver

            forkserver.block_interrupts()
        if self._client is not None:
            return existing_cluster(self._client)
        handle = self._stack.enter_context(start_cluster(self.job, plan=self.plan))
        if not warm or not handle.processes:
            return handle  # nothing to import: the workers share this process's modules
        client = handle.client
        # a task on each worker (its event loop stays free to answer the scheduler); the
        # futures are kept so that the tasks are not released before they run
        self._warming = [
            client.submit(_warm_up, pure=False, workers=[address], key=f"hpctune-warm-up-{i}")
            for i, address in enumerate(client.scheduler_info()["workers"])
        ]
        return handle

    def handle(self) -> ClusterHandle:
        """The started cluster (started now, in this thread, if :meth:`begin` was not called)."""
        if self._started is None:
            return self._start()
        return self._started.result()

    def close(self) -> None:
        """Stop the cluster (once its start, if still running, has ended)."""
        if self._started is not None:
            with contextlib.suppress(Exception):  # a failed start was reported by handle()
                self._started.result()
        self._stack.close()


def run(
    job: Job,
    *,
    restart: bool = False,
    part: tuple[int, int] | None = None,
    client: Any = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Validate ``job`` against its data, decide the run's plan, then run it (see
    :func:`run_prepared`).

    The plan is decided once, after the data checks, from the spec, the allocation (detected
    once) and the partitions left. A local cluster then starts in a thread while the estimator
    is checked; it is closed again if that fails (nothing is written before).
    """
    allocation = None if client is not None else registry.detect_allocation()
    mode = "external" if client is not None else choose_mode(job, allocation)
    if mode == "local" and not threads_possible(job, mode):
        prepare_local_workers(job)  # the forkserver's imports beside the data checks
    data = check_data(job)
    left = partitions_left(job, data.plan.size, part, restart)
    start = ClusterStart(job, decide(job, left, client, allocation, mode), client)
    try:
        if mode == "local" and left:
            start.begin()
        prepared = check_search(data)
        return run_prepared(prepared, restart=restart, part=part, progress=progress, start=start)
    finally:
        start.close()


def merge(job: Job) -> Any:
    """Write results.nc from the partitions recorded so far (after the tasks of an array)."""
    prepared = prepare(job)
    store = Store(job.output_dir)
    store.check_compatible(job)
    locks = store.lock(None)
    try:
        return store.write_results(job, prepared.plan, prepared.coords)
    finally:
        for lock in locks:
            lock.release()
