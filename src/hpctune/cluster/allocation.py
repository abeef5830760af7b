"""``cluster.mode: allocation``: workers on the nodes of the batch job this process runs in,
started with its batch system's launcher."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import AllocationError, ClusterError
from ..schedulers import registry
from ..schedulers.base import Allocation
from ..spec import Job
from .handle import (
    DASHBOARD_ADDRESS,
    SERVER_CONFIG,
    ClusterHandle,
    distributed_log_level,
    node_name,
    remote_handle,
)
from .layout import plan_layout
from .placement import ExecutionPlan, Placement
from .waiting import wait_for_workers, watch_stop_signals

if TYPE_CHECKING:
    from .processes import WorkerProcesses

log = logging.getLogger("hpctune")


@contextlib.contextmanager
def allocation_cluster(job: Job, plan: ExecutionPlan) -> Iterator[ClusterHandle]:
    """The scheduler here, workers on every host of ``plan``'s allocation."""
    import dask
    from distributed import Client, LocalCluster

    from ..schedulers.launch import WorkerSpec, worker_environment
    from .processes import WorkerProcesses
    from .security import write_credentials

    allocation, layout = plan.allocation, plan.placement.layout
    assert allocation is not None and layout is not None  # place() refuses an allocation run
    scheduler = registry.scheduler_for(allocation, job.scheduler.kind)
    try:
        launcher = scheduler.launcher(allocation)
    except AllocationError as exc:
        raise ClusterError(str(exc)) from None
    host = scheduler_host(job.cluster.interface, allocation.hosts)
    credentials = write_credentials(job.output_dir)
    processes: WorkerProcesses | None = None
    cluster = client = None
    stopping = threading.Event()  # set by a stop signal from the scheduler's start on
    try:
        # a stop while the scheduler starts is heard as well: no launcher starts after it
        with watch_stop_signals() as stopping:
            security = credentials.security()
            with dask.config.set(SERVER_CONFIG):  # the scheduler's; the workers' on their nodes
                cluster = LocalCluster(
                    n_workers=0,
                    processes=True,
                    host=host,
                    protocol="tls://",
                    security=security,
                    dashboard_address=DASHBOARD_ADDRESS,
                    silence_logs=distributed_log_level(),
                )
            address = cluster.scheduler_address
            credentials.write_scheduler_file(address, job_id=allocation.job_id)
            client = Client(cluster, security=security)
            worker = WorkerSpec(
                address=address,
                tls_args=tuple(credentials.worker_args()),
                interface=job.cluster.interface,
            )
            commands = launcher.commands(layout, worker, worker_environment())
            log_path = job.log_dir / f"workers-{allocation.job_id}-{os.getpid()}.log"
            processes = WorkerProcesses(commands, log_path)
            if not stopping.is_set():
                log.info(
                    "starting %s with %s: %s",
                    layout.describe(),
                    launcher.name,
                    commands[0].shell(),
                )
                processes.start()
            connected = wait_for_workers(
                client,
                layout.total_workers,
                job.cluster.start_timeout,
                processes=processes,
                what=f"{launcher.name} workers",
                stopping=stopping,
            )
            yield remote_handle(
                client,
                job,
                address=address,
                mode="allocation",
                workers=connected,
                threads=layout.threads,
                what=(
                    f"allocation ({allocation.kind} job {allocation.job_id}): {connected} "
                    f"workers x {layout.threads} thread(s)"
                ),
            )
    finally:
        if stopping.is_set():
            _close_stopped(client, cluster, processes)
        else:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
            if processes is not None:
                # the scheduler has told the workers to close; their nannies follow in seconds
                processes.stop(timeout=20.0)
        credentials.remove()


def _close_stopped(client: Any, cluster: Any, processes: WorkerProcesses | None) -> None:
    """Close a run stopped by a signal within about 7 s: the client and the scheduler
    :data:`STOP_CLOSE_STEP_SECONDS` each, then the launchers (0.5 s to leave, 1.5 s after
    SIGTERM, 1 s after SIGKILL).

    A cancelled job's processes are killed after the batch system's grace (SLURM's
    ``KillWait``: 30 s by default, often less; 10 s on the test SLURM), hpctune's exit and its
    128+N with them. Workers still starting were told nothing and a launcher may not end on
    SIGTERM (an ``srun`` whose step is being cancelled can wait on it): each step here has a
    bound, and the launchers get SIGTERM after half a second, SIGKILL soon after. Once closed,
    workers left on other nodes lose their scheduler and end on their own.
    """
    for closing in (client, cluster):
        if closing is not None:
            with contextlib.suppress(Exception):  # TimeoutError, or a loop already gone
                closing.close(timeout=STOP_CLOSE_STEP_SECONDS)
    if processes is not None:
        processes.stop(timeout=0.5, term_grace=1.5, kill_grace=1.0)


STOP_CLOSE_STEP_SECONDS = 2.0
"""The bound on each of the client's and the scheduler's close after a stop."""


def scheduler_host(interface: str | None, hosts: tuple[str, ...] = ()) -> str:
    """The address the scheduler listens on: that of ``cluster.interface``, else the one this
    machine uses to reach the other allocated nodes."""
    from distributed.utils import get_ip, get_ip_interface

    if interface:
        try:
            return get_ip_interface(interface)
        except ValueError as exc:
            raise ClusterError(f"cluster.interface: {exc}") from None
    here = node_name()
    for host in hosts:
        if host != here:
            with contextlib.suppress(OSError):
                return get_ip(socket.gethostbyname(host))
    return get_ip()


def place(job: Job, allocation: Allocation | None, max_workers: int | None) -> Placement:
    """The workers of each host of ``allocation`` (:func:`~hpctune.cluster.layout.plan_layout`);
    outside a batch job, an error that says where to run. ``max_workers`` does not apply: every
    allocated core is the run's."""
    if allocation is None:
        raise ClusterError(
            "cluster.mode allocation: this is not a batch job (none of "
            f"{', '.join(registry.job_variables())} is set); run inside a batch or "
            f"interactive job ({', '.join(registry.submit_programs())}), or choose mode "
            "local or jobqueue"
        )
    registry.scheduler_for(allocation, job.scheduler.kind).check_allocation(allocation)
    try:
        layout = plan_layout(allocation, job.cluster)
    except AllocationError as exc:
        raise ClusterError(str(exc)) from None
    return Placement(
        "allocation", layout.total_workers, layout.threads, allocation=allocation, layout=layout
    )


start = allocation_cluster
"""The mode's start: :func:`allocation_cluster`."""
