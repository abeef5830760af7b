"""Workers as threads of this process, on dask's local scheduler."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import RunStopped
from ..kept import release_all
from ..spec import Job
from .handle import ClusterHandle
from .placement import ExecutionPlan


class WorkerThreads:
    """The workers of a local run as ``size`` threads of this process, computing the tasks of
    dask's local scheduler (:func:`dask.local.get_async`).

    Every search in flight submits its tasks to the same threads, so that no more tasks than
    slots run at once, however many searches are waiting. The threads are daemons: a run stopped
    by a signal exits without waiting for a fit that is running in compiled code.
    """

    def __init__(self, size: int, name: str = "hpctune-worker") -> None:
        import queue

        self.size = size
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._running = 0
        self._lock = threading.Lock()  # a task is queued before the threads' ends, or refused
        for i in range(size):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def submit(self, fn: Any, *args: Any) -> Any:
        from concurrent.futures import Future

        future: Future[Any] = Future()
        with self._lock:
            if not self._closed:
                self._queue.put((future, fn, args))
                return future
        return _refused(future, "the run's worker threads were closed")

    def get(self, dsk: Any, keys: Any, stop: threading.Event | None = None) -> Any:
        """Compute ``keys`` of the task graph ``dsk`` on these threads (a dask ``get``). Once
        ``stop`` is set no task starts, and the graph ends with :class:`RunStopped`."""
        from concurrent.futures import Future

        from dask.local import get_async

        def submit(fn: Any, *args: Any) -> Any:
            if stop is not None and stop.is_set():
                return _refused(Future(), "the run was stopped")
            return self.submit(fn, *args)

        return get_async(submit, self.size, dsk, keys, get_id=threading.get_ident)

    def close(self) -> None:
        """Start no more tasks: those waiting are cancelled, running ones end on their own."""
        import queue

        with self._lock:
            self._closed = True
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
            for _ in range(self.size):
                self._queue.put(None)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            with self._lock:
                self._running += 1
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the graph's scheduler, which raises it
                future.set_exception(exc)
            finally:
                with self._lock:
                    self._running -= 1
            del future, fn, args, item  # a task's result is not kept alive by an idle thread

    def idle(self) -> bool:
        """Whether no task is running (after :meth:`close`: none will)."""
        with self._lock:
            return self._running == 0


def _refused(future: Any, why: str) -> Any:
    """``future``, failed with :class:`RunStopped`: a task that will not run."""
    future.set_exception(RunStopped(why))
    return future


@contextlib.contextmanager
def worker_threads(job: Job, plan: ExecutionPlan) -> Iterator[ClusterHandle]:
    """Workers as threads of this process on dask's local scheduler: no scheduler process or
    event loop, no network listener, nothing pickled; no memory limit (the memory is this
    process's own, with nothing to spill). No Dask dashboard either: there is no distributed
    scheduler to serve one (``cluster.processes: true`` has it)."""
    workers, threads = plan.workers, plan.threads
    pool = WorkerThreads(workers * threads)
    why = plan.threads_reason or "cluster.processes: false"
    try:
        yield ClusterHandle(
            client=None,
            mode="local",
            workers=workers,
            threads=threads,
            description=f"local: {workers * threads} worker threads in this process ({why})",
            processes=False,
            pool=pool,
        )
    finally:
        pool.close()
        if pool.idle():
            # What the run's tasks opened in this process (datasets, the journal) is closed;
            # not while a stopped run's task still runs in compiled code: it may be reading.
            release_all()
