"""Each partition's search as a task graph on the cluster (granularity ``fit``)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ..cluster import (
    node_name,
)
from ..data import CellReader
from ..output.folder import Store
from ..output.journal import Journal
from ..search import (
    PartitionSearch,
    SearchTimeout,
    n_candidates,
    n_folds,
)
from .runner import POLL_SECONDS, Runner
from .tasks import (
    partition_rows,
    record_result,
)

#: Seconds a retry waits, at most, for ended workers to be replaced.
RESTART_WAIT = 120

log = logging.getLogger("hpctune")


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
        """Searches in flight at once: enough fits to keep every slot busy twice over."""
        search = self.ctx.job.search
        per_search = n_candidates(search) * (n_folds(search.cv) or 1)
        wanted = math.ceil(2 * max(1, self.execution.slots) / per_search)
        return max(1, min(len(self.todo), max(2, wanted), self.MAX_CONCURRENT))

    def run(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        job, info = self.ctx.job, self.ctx.info
        test = job.data.test
        self.reader = CellReader(job.data, info)
        self.search = PartitionSearch(
            job.search, test_start=test.start if test else None, window=job.data.train
        )
        self.store = Store(Path(self.ctx.output))
        self.journal = Journal(self.store.parts, models=self.store.models)
        nodes = self.client.run(node_name).values() if self.client is not None else ()
        workers = len(nodes)
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
                if self.stop.is_set():
                    break
                self._wait_for_workers(workers)
                status = self._one(index, last_try=True)
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
            record_result(self.journal, result)
        return result.status

    def _wait_for_workers(self, workers: int) -> None:
        """Before a retry: wait (a bounded time) for the workers a timed-out search ended to be
        replaced, so that the retry's ``search.timeout`` counts its own fits, not the restart
        of the workers (their imports take seconds, tens on a loaded node)."""
        if self.client is None or not self.execution.processes or workers == 0:
            return
        with contextlib.suppress(Exception):
            self.client.wait_for_workers(workers, timeout=RESTART_WAIT)

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
