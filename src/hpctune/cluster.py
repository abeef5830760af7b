"""Start and stop the Dask cluster a run computes on.

``local`` is a :class:`distributed.LocalCluster` of worker processes on this machine, bound to
127.0.0.1 (the default outside any allocation).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import HpctuneError
from .spec import Job

log = logging.getLogger("hpctune")


@dataclass
class ClusterHandle:
    client: Any
    mode: str
    workers: int
    """Worker processes expected (all of them have started when the run begins)."""
    threads: int
    """Threads per worker: tasks that may run at once on each worker."""
    dashboard: str | None = None
    description: str = ""

    @property
    def slots(self) -> int:
        return self.workers * self.threads


def node_name() -> str:
    """The scheduler's name for this node, else the host name."""
    for variable in ("SLURMD_NODENAME", "PBS_NODENAME"):
        value = os.environ.get(variable)
        if value:
            return value
    return socket.gethostname().split(".")[0]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_mode(job: Job) -> str:
    mode = job.cluster.mode
    if mode != "auto":
        return mode
    return "local"


@contextlib.contextmanager
def start_cluster(job: Job) -> Iterator[ClusterHandle]:
    mode = resolve_mode(job)
    if mode != "local":
        raise HpctuneError(f"cluster.mode {mode!r} is not available in this build")
    with _local_cluster(job) as handle:
        yield handle


@contextlib.contextmanager
def _local_cluster(job: Job) -> Iterator[ClusterHandle]:
    from distributed import Client, LocalCluster

    threads = job.cluster.threads
    workers = job.cluster.workers or max(1, available_cores() // threads)
    dashboard = "127.0.0.1:0" if job.cluster.dashboard else None
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        host="127.0.0.1",
        dashboard_address=dashboard,
        local_directory=_scratch_dir(),
        silence_logs=logging.ERROR,
    )
    try:
        client = Client(cluster)
        try:
            link = client.dashboard_link if dashboard else None
            yield ClusterHandle(
                client=client,
                mode="local",
                workers=workers,
                threads=threads,
                dashboard=link,
                description=f"local cluster: {workers} worker processes x {threads} thread(s)",
            )
        finally:
            client.close()
    finally:
        cluster.close()


def _scratch_dir() -> str | None:
    """Node-local scratch for worker spill files, when the scheduler provides one."""
    for variable in ("SLURM_TMPDIR", "TMPDIR"):
        value = os.environ.get(variable)
        if value and os.path.isdir(value):
            return value
    return None


def existing_cluster(client: Any) -> ClusterHandle:
    """Wrap a client the caller started (tests, notebooks, a group's own cluster)."""
    info = (
        client.scheduler_info(n_workers=-1)
        if _accepts_n_workers(client)
        else client.scheduler_info()
    )
    workers = info.get("workers", {})
    threads = max((w.get("nthreads", 1) for w in workers.values()), default=1)
    return ClusterHandle(
        client=client,
        mode="external",
        workers=len(workers),
        threads=threads,
        dashboard=None,
        description=f"existing cluster: {len(workers)} workers",
    )


def _accepts_n_workers(client: Any) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False
