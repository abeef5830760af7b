"""A started cluster as the run sees it, and where this process runs: node name, cores, scratch."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from ..schedulers import registry
from ..spec import Job

log = logging.getLogger("hpctune")


DASHBOARD_ADDRESS = "127.0.0.1:0"
"""HTTP servers (dashboard or not) listen on localhost only, on a free port."""

SERVER_CONFIG: dict[str, Any] = {
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "5s",
}
"""Dask settings for every Dask server hpctune starts (scheduler, nannies, workers).

Each server checks its event loop's health with a timer every 20 ms (distributed's default):
it logs when the loop was blocked for more than ``distributed.admin.tick.limit`` (3 s), and
the dashboard shows the interval it observed. 50 wake-ups a second in every process cost more
than anything else an idle cluster does: on the 2-core VM an idle local cluster of 2 workers
took 36-47 ms of CPU per second in the driver, 22-24 with a check every 500 ms
(``benchmarks/idle_cluster.py``, benchmarks/RESULTS.md). The warning still comes, 0.5 s late at
most; distributed's own test suite runs its servers with the same 500 ms.

Each server also samples its process's CPU, memory, disk and network counters (psutil) every
500 ms for the dashboard's system pages and the memory the scheduler displays: every 5 s here.
A local cluster's nannies all run in the driver, so this grew with the workers: an idle
cluster of 16 workers took 48 ms of the driver's CPU per second, 28 with a sample every 5 s.
The memory limits act on samples of their own (``distributed.worker.memory.monitor-interval``).
"""

WORKER_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
    **SERVER_CONFIG,
}
"""Dask settings for the nannies hpctune starts (local, allocation and jobqueue workers), and
the scheduler of a local cluster (:data:`SERVER_CONFIG` among them).

distributed starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``, which returns freed
memory to the system at once; setting it also turns off glibc's adaptive thresholds, so the
allocations of every fit fault their pages in again. Measured on the ``heavy`` benchmark
(StandardScaler + SVR): each search 5% slower (benchmarks/RESULTS.md). hpctune's tasks keep
no data between them (a worker's memory is the few chunks it reads), so the worker processes
use glibc's defaults, as the serial scikit-learn run they are compared with does.

distributed's statistical profiler samples each worker's task threads 100 times a second on
the worker's event loop, for the dashboard's Profile page: 1.3% of a core per worker on the
``tiny`` benchmark (benchmarks/RESULTS.md, "Where the CPU goes"), spent on every worker of
every run whether anyone looks or not. It is off; the dashboard's other pages are unchanged.

Each worker and its nanny read the worker's memory every 100 ms by default (to spill, pause,
or end a worker past its limit). hpctune's tasks hold no results in worker memory (each
partition is written as it finishes), so there is nothing to spill: a check every 500 ms still
pauses or ends a runaway fit, at a fifth of the cost (idle cluster of 2 workers on the 2-core
VM, the event-loop check at 500 ms already: driver 22-24 -> 12.5-14 ms of CPU per second; the
two workers, profiler off, 36-40 -> 8-10 with both checks at 500 ms).
"""


def distributed_log_level() -> int:
    """The level of Dask's own log records shown on stderr, in this process and in the local
    workers: errors with ``-v`` (hpctune's log at INFO), else none. The run reports what
    matters itself (a failed partition and why, a worker that died); Dask's records at a stop
    or at the end of a run are of its shutdown (a worker's heartbeat to a scheduler already
    closed: ``CommClosedError ... Stream is closed``), not for the user's terminal."""
    return logging.ERROR if log.isEnabledFor(logging.INFO) else logging.CRITICAL


@dataclass
class ClusterHandle:
    """A started cluster as the run sees it: the client (or worker threads), the workers
    connected and their threads, and the lines that describe it to the user."""

    client: Any
    """The Dask client; None when the workers are threads of this process (:attr:`pool`)."""
    mode: str
    workers: int
    """Worker processes connected when the run begins (jobqueue: asked for)."""
    threads: int
    """Threads per worker: tasks that may run at once on each worker."""
    dashboard: str | None = None
    description: str = ""
    address: str = ""
    """The scheduler's address, e.g. ``tls://10.1.2.3:40123``."""
    tunnel: str | None = None
    """The ``ssh -L`` command that reaches the dashboard from another machine."""
    processes: bool = True
    """False: the workers are threads of this process (the plan's ``processes``)."""
    pool: Any = None
    """The worker threads (:class:`~hpctune.cluster.threads.WorkerThreads`), when the workers
    are threads of this process (``client`` is None)."""

    @property
    def slots(self) -> int:
        return self.workers * self.threads


def node_name() -> str:
    """The scheduler's name for this node, else the host name."""
    for variable in ("HPCTUNE_NODE_NAME", *registry.node_variables()):
        value = os.environ.get(variable)
        if value:
            return value
    return socket.gethostname().split(".")[0]


def available_cores() -> int:
    """CPUs this process may use: its affinity, capped by what a batch job was given where
    the batch system does not bind jobs to their CPUs."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    for variable in registry.cpu_variables():
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return min(cores, int(value))
    return cores


def scratch_dir() -> str | None:
    """Node-local scratch for worker spill files, when the scheduler provides one."""
    for variable in registry.scratch_variables():
        value = os.environ.get(variable)
        if value and os.path.isdir(value):
            return value
    return None


def remote_handle(
    client: Any, job: Job, *, address: str, mode: str, workers: int, threads: int, what: str
) -> ClusterHandle:
    """The handle of workers on other nodes (allocation, jobqueue): its description is ``what``
    and the nodes the workers report, its dashboard the link and, for another machine, the
    ssh tunnel to it."""
    nodes = sorted(set(client.run(node_name).values()))
    link = client.dashboard_link if job.cluster.dashboard else None
    tunnel = ssh_tunnel(link) if link else None
    return ClusterHandle(
        client=client,
        mode=mode,
        workers=workers,
        threads=threads,
        dashboard=link,
        description=f"{what} on {','.join(nodes)} ({address})"
        + (f"; dashboard from another machine: {tunnel}" if tunnel else ""),
        address=address,
        tunnel=tunnel,
    )


def ssh_tunnel(link: str) -> str:
    """``ssh -N -L PORT:127.0.0.1:PORT HOST``: the dashboard of this node from a laptop."""
    port = _port_of(link)
    return f"ssh -N -L {port}:127.0.0.1:{port} {socket.gethostname()}"


def _port_of(link: str) -> str:
    from urllib.parse import urlparse

    return str(urlparse(link).port or 8787)


def existing_cluster(client: Any) -> ClusterHandle:
    """Wrap a client the caller started (tests, notebooks, a group's own cluster)."""
    nthreads = client.nthreads()
    threads = max(nthreads.values(), default=1)
    return ClusterHandle(
        client=client,
        mode="external",
        workers=len(nthreads),
        threads=threads,
        dashboard=None,
        description=f"existing cluster: {len(nthreads)} workers",
        address=getattr(client.scheduler, "address", "") or "",
    )
