"""Worker processes forked from one process that has already imported what they need.

distributed spawns each worker process from a fresh interpreter, which then imports
scikit-learn, dask-ml, xarray and skops: about 3 CPU seconds per worker here, paid again by
every worker of a node, all at once, while the driver does its own start-up (on a node of 128
cores, 128 interpreters reading the same thousands of files from a shared filesystem). With
Python's ``forkserver`` start method those imports happen once, in one server process per
node, and each worker is forked from it, ready. Measured on the ``onecell`` benchmark: the
first fit 1.6 s sooner, and 90 MiB less memory per worker, since forked workers share the
imported libraries' pages (benchmarks/RESULTS.md, "Forked workers").

The server is started with the environment distributed gives its worker processes (its
``distributed.nanny.pre-spawn-environ``: one BLAS thread, a fixed ``PYTHONHASHSEED``), since
variables like ``OMP_NUM_THREADS`` act when a library loads, which is in the server. Only
modules that start no threads on import are preloaded (forking copies one thread only): the
user's own estimator modules are imported by each worker, as before.

The server starts with SIGINT blocked, which it and every worker forked from it keep: Ctrl-C
at a terminal signals the whole foreground process group, and only the process that started
the workers (``hpctune run``, or ``dask worker`` on an allocated node) is to act on it, closing
its workers in order. Without it a worker ends on its own with a ``KeyboardInterrupt``
traceback on the terminal, and a server still importing its modules ends, failing the next
worker start (:func:`interrupts_blocked`).

``HPCTUNE_FORKSERVER=0`` in the environment turns this off (workers are spawned, distributed's
default). Where Python has no ``forkserver`` (Windows), workers are spawned too.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

log = logging.getLogger("hpctune")

WORKER_MODULES = (
    "hpctune.execution.tasks",  # the partition tasks, the CellReader (xarray)
    "dask_ml.model_selection",  # the search graph's tasks (with scikit-learn, scipy, pandas)
    "skops.io",  # the models a worker writes
)
"""What every hpctune worker imports before (or at) its first task."""

FREEZE = "hpctune.cluster.frozen"
"""Imported by the server after every other module: freezes what it holds (:mod:`.frozen`)."""

CONFIG = {"distributed.worker.multiprocessing-method": "forkserver"}
"""The Dask setting under which a nanny forks its worker from the server."""

ENVIRONMENT_SWITCH = "HPCTUNE_FORKSERVER"

_lock = threading.Lock()


def worker_modules(estimator: Iterable[str] = ()) -> list[str]:
    """:data:`WORKER_MODULES`, and the modules of the spec's scikit-learn estimators."""
    modules = list(WORKER_MODULES)
    for path in estimator:
        module = path.rpartition(".")[0]
        if module.split(".")[0] == "sklearn" and module not in modules:
            modules.append(module)
    return modules


def enabled() -> bool:
    """Whether workers are forked from the forkserver: unless ``HPCTUNE_FORKSERVER`` turns it
    off (to compare, or where fork is unsafe) and where the platform has the start method."""
    if os.environ.get(ENVIRONMENT_SWITCH, "1").strip().lower() in ("0", "no", "false", "off"):
        return False
    return "forkserver" in multiprocessing.get_all_start_methods()


def server_environment() -> dict[str, str]:
    """The variables a nanny sets before it spawns a worker (and hpctune's
    ``WORKER_CONFIG``, when in effect), resolved as distributed's private
    ``nanny._get_env_variables`` does: a variable already in the environment wins."""
    import dask

    configured = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    out = {k: os.environ.get(k, str(v)) for k, v in configured.items() if v is not None}
    if out.get("PYTHONHASHSEED") in (None, "0"):
        out["PYTHONHASHSEED"] = "6640"  # distributed's choice: the same hashes in every worker
    return out


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def start(modules: Iterable[str]) -> bool:
    """Start this process's forkserver, importing ``modules`` (and distributed's own list),
    unless it runs already; False where workers are to be spawned instead. Call it inside the
    Dask configuration the nannies will start under (``WORKER_CONFIG``)."""
    if not enabled():
        return False
    from multiprocessing import forkserver

    import dask
    from distributed.utils import get_mp_context
    from distributed.versions import optional_packages, required_packages

    with _lock:
        with dask.config.set(CONFIG):
            context: Any = get_mp_context()  # distributed sets its preload list once, here
        # distributed's list, then ours (a module that fails to import is skipped)
        preload = ["distributed", *required_packages, *optional_packages]
        preload += [m for m in modules if m not in preload]
        preload.append(FREEZE)  # last: what the server holds stays shared with its workers
        context.set_forkserver_preload(preload)
        try:
            with _environment(server_environment()), interrupts_blocked():
                forkserver.ensure_running()
        except OSError as exc:  # no more processes, a read-only /tmp for its socket
            log.warning("workers are spawned: the forkserver did not start (%s)", exc)
            return False
    return True


def block_interrupts() -> Any:
    """Block SIGINT in the calling thread, and so in the processes and threads it starts from
    now on (a process inherits its parent thread's signal mask, across ``exec`` too; Python
    leaves it as it finds it); the mask before. A SIGINT that arrives meanwhile is not lost:
    another thread takes it, or this one once it is unblocked."""
    from multiprocessing import resource_tracker

    # started first: starting it unblocks SIGINT and SIGTERM in the calling thread
    resource_tracker.ensure_running()
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@contextlib.contextmanager
def interrupts_blocked() -> Iterator[None]:
    """SIGINT blocked in the calling thread meanwhile (:func:`block_interrupts`)."""
    previous = block_interrupts()
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def worker_start(modules: Iterable[str]) -> Iterator[None]:
    """The Dask configuration under which nannies fork their workers from the server, when it
    runs (else they spawn them)."""
    import dask

    with dask.config.set(CONFIG if start(modules) else {}):
        yield
