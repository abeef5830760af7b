"""The cluster modes, and :func:`open_cluster`: the one cluster context of run, plan and
predict, starting what an :class:`~hpctune.cluster.plan.ExecutionPlan` says."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from ..schedulers import registry
from ..spec import Job
from .allocation import allocation_cluster
from .handle import ClusterHandle, existing_cluster
from .jobqueue import jobqueue_cluster
from .local import local_cluster
from .plan import ExecutionPlan, choose_mode, login_node_warning, place
from .threads import worker_threads

log = logging.getLogger("hpctune")


@contextlib.contextmanager
def start_cluster(
    job: Job, in_process: bool = False, *, plan: ExecutionPlan | None = None
) -> Iterator[ClusterHandle]:
    """Start the cluster ``plan`` describes, wait for its workers, and stop it afterwards.

    Without ``plan``: the plan of ``job.cluster`` in this process's environment, its local
    workers threads of this process when ``in_process``.
    """
    if plan is None:
        allocation = registry.detect_allocation()
        placement = place(job, choose_mode(job, allocation), allocation)
        plan = ExecutionPlan(
            placement, processes=not in_process, granularity="partition", partitions=None
        )
    started = time.monotonic()
    warning = login_node_warning(job) if plan.mode == "local" else None
    if warning:
        log.warning("%s", warning)
    if plan.mode == "local" and not plan.processes:
        context = worker_threads(job, plan)
    elif plan.mode == "local":
        context = local_cluster(job, plan)
    elif plan.mode == "allocation":
        context = allocation_cluster(job, plan)
    else:
        context = jobqueue_cluster(job, plan.placement.jobqueue)
    with context as handle:
        log.info("%s; ready in %.1f s", handle.description, time.monotonic() - started)
        yield handle


@contextlib.contextmanager
def open_cluster(job: Job, plan: ExecutionPlan, client: Any = None) -> Iterator[ClusterHandle]:
    """The cluster of every command (run, plan, predict): the caller's ``client``, else the one
    :func:`start_cluster` starts from ``plan`` and stops again."""
    if client is not None:
        yield existing_cluster(client)
        return
    with start_cluster(job, plan=plan) as handle:
        yield handle
