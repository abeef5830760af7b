"""``cluster.mode: local``: workers on this machine, as processes (a LocalCluster forked from
hpctune's forkserver) or as threads of this process (:mod:`.threads`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..schedulers.base import Allocation
from ..spec import Job
from .handle import (
    DASHBOARD_ADDRESS,
    WORKER_CONFIG,
    ClusterHandle,
    distributed_log_level,
    scratch_dir,
)
from .placement import ExecutionPlan, Placement
from .plan import local_layout
from .threads import worker_threads


def prepare_local_workers(job: Job) -> None:
    """Start the process local workers are forked from (:mod:`hpctune.cluster.forkserver`), so that
    its imports run beside the driver's own start-up and the data checks. Nothing else starts:
    the workers do, once the checks have passed."""
    import dask

    # distributed's defaults join Dask's config first: leaving the ``dask.config.set`` below
    # would remove a ``distributed`` section that it had to create
    import distributed  # noqa: F401

    from . import forkserver

    with dask.config.set(WORKER_CONFIG):
        forkserver.start(forkserver.worker_modules(job.search.estimator))


@contextlib.contextmanager
def local_cluster(job: Job, plan: ExecutionPlan) -> Iterator[ClusterHandle]:
    """Worker processes on this machine, as many as ``plan`` says."""
    import dask
    from distributed import Client, LocalCluster

    from . import forkserver
    from .security import temporary_security

    workers, threads = plan.workers, plan.threads
    security = temporary_security()
    modules = forkserver.worker_modules(job.search.estimator)
    with dask.config.set(WORKER_CONFIG), forkserver.worker_start(modules):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            protocol="tls://",
            security=security,
            dashboard_address=DASHBOARD_ADDRESS,  # its HTTP server, dashboard or not, local
            local_directory=scratch_dir(),
            silence_logs=distributed_log_level(),
        )
    try:
        client = Client(cluster, security=security)
        try:
            link = client.dashboard_link if job.cluster.dashboard else None
            yield ClusterHandle(
                client=client,
                mode="local",
                workers=workers,
                threads=threads,
                dashboard=link,
                description=(
                    f"local cluster: {workers} worker processes x {threads} thread(s) "
                    f"({cluster.scheduler_address})"
                ),
                address=cluster.scheduler_address,
            )
        finally:
            client.close()
    finally:
        cluster.close()


def place(job: Job, allocation: Allocation | None, max_workers: int | None) -> Placement:
    """This machine's cores (:func:`~hpctune.cluster.plan.local_layout`), at most
    ``max_workers`` workers."""
    workers, threads = local_layout(job)
    if max_workers is not None:
        workers = max(1, min(workers, max_workers))
    return Placement("local", workers, threads, allocation=allocation)


def start(job: Job, plan: ExecutionPlan) -> contextlib.AbstractContextManager[ClusterHandle]:
    """Worker threads of this process where the plan says so, else local worker processes."""
    return local_cluster(job, plan) if plan.processes else worker_threads(job, plan)
