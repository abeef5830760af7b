"""The run, in order: data checks, the one execution plan, the cluster's start beside the
estimator's checks, the runner of the plan's granularity, results.nc; and the stop signals.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import startup
from ..cluster import (
    ClusterHandle,
    ExecutionPlan,
    choose_mode,
    existing_cluster,
    place,
    plan_execution,
    prepare_local_workers,
    start_cluster,
    threads_possible,
)
from ..data.partitions import Partitioning, slice_indices
from ..output.folder import Store
from ..progress import Counts, Progress
from ..schedulers import registry
from ..spec import Job
from .batches import BatchRunner
from .graphs import SearchGraphRunner
from .outside import skip_outside
from .prepare import Prepared, check_data, check_search, prepare, results_options
from .runner import Runner
from .tasks import (
    TaskContext,
    warm_up,
)

log = logging.getLogger("hpctune")


@dataclass
class RunSummary:
    """What a run did, as ``hpctune run`` prints it (:meth:`line`, ``--json``: :meth:`to_dict`)
    and the Python API returns it; its :attr:`exit_code` is the command's."""

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


@contextlib.contextmanager
def _stop_on_signals(stop: startup.StopEvent, caught: list[str]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGUSR1 (the scheduler's warning before the walltime) stop the run:
    no new partitions are started, finished ones are already on disk. Any number of signals,
    arriving together or during the handler of another, set ``stop`` once
    (:class:`hpctune.startup.StopEvent`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if not caught:
            caught.append(signal.Signals(signum).name)
        stop.set_from_handler()

    wanted = [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1]
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    if (earlier := startup.stop_signal()) is not None:
        # a stop came before these handlers and its Interrupted was swallowed on the way
        # (startup._interrupt): the run begins stopped
        handler(earlier, None)
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
        left = partitions_left(prepared.job, prepared.plan.size, part, restart, prepared.plan)
        start = ClusterStart(prepared.job, decide(prepared.job, left, client), client)
    stop = startup.StopEvent()
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
        latest = store.latest()
        finished = latest.finished(plan.size)
        # as when the plan was decided, unless another run finished partitions in between:
        # then fewer are left, and the plan stands
        todo = mine[~finished[mine]].astype(np.int64)
        counts = Counts(total=int(mine.size), resumed=int(mine.size - todo.size))
        todo = skip_outside(store, plan, todo, counts)
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
            try:
                handle = start.handle()
                summary.cluster = handle.description
                progress.message(
                    f"{handle.description}"
                    + (f"; dashboard {handle.dashboard}" if handle.dashboard else "")
                )
                summary.granularity = execution.granularity
                runner: type[Runner] = RUNNERS[execution.granularity]
                runner(handle, ctx, todo, counts, progress, stop, execution).run()
            except Exception:
                # A stop signal sent to the whole process group (Ctrl-C at a terminal, a batch
                # system's kill) reaches the worker processes too: a cluster still starting
                # then fails ("Nanny failed to start"). That is the stop, not a failure of the
                # run; what finished is on disk.
                if not stop.is_set():
                    raise
                log.info("the cluster failed after the run was stopped", exc_info=True)
        progress.update(counts, force=True)
        progress.close()
        earlier = latest.counts(mine[finished[mine]])
        summary.ok = counts.ok + earlier.ok
        summary.skipped = counts.skipped + earlier.skipped
        summary.failed = counts.failed
        summary.resumed = counts.resumed
        summary.pending = counts.remaining
        if part is None and not stop.is_set():
            summary.results = store.write_results(
                job, plan, prepared.coords, **results_options(prepared)
            )
        summary.seconds = time.monotonic() - started
        return summary
    finally:
        for lock in locks:
            lock.release()


RUNNERS: dict[str, type[Runner]] = {"partition": BatchRunner, "fit": SearchGraphRunner}
"""The runner of each granularity of the plan."""


def partitions_left(
    job: Job,
    size: int,
    part: tuple[int, int] | None,
    restart: bool,
    plan: Partitioning | None = None,
) -> int:
    """How many of this run's partitions have no finished record yet (a read-only scan of the
    journals; all of them on ``restart``), outside ``data.where`` not counted (with ``plan``):
    they are recorded, not computed."""
    mine = slice_indices(size, part)
    if plan is not None:
        mine = mine[~plan.outside_mask[mine]]
    if restart:
        return int(mine.size)
    finished = Store(job.output_dir).latest().finished(size)
    return int((~finished[mine]).sum())


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
            from ..cluster import forkserver

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
            client.submit(warm_up, pure=False, workers=[address], key=f"hpctune-warm-up-{i}")
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
    left = partitions_left(job, data.plan.size, part, restart, data.plan)
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
        return store.write_results(job, prepared.plan, prepared.coords, **results_options(prepared))
    finally:
        for lock in locks:
            lock.release()
