"""The cluster modes (:data:`MODES`: each mode's module places its workers and starts them),
and :func:`open_cluster`: the one cluster context of run, plan and predict, starting what an
:class:`~hpctune.cluster.placement.ExecutionPlan` says.

A new mode is a module here with a ``place`` and a ``start`` (see :class:`ClusterMode`), one
entry of :data:`MODES`, and its name in ``ClusterSpec.mode`` (spec/schema.py)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..schedulers import registry
from ..schedulers.base import Allocation
from ..spec import Job
from . import allocation as allocation_mode
from . import jobqueue as jobqueue_mode
from . import local as local_mode
from .handle import ClusterHandle, existing_cluster
from .placement import ExecutionPlan, Placement
from .plan import choose_mode, login_node_warning

log = logging.getLogger("hpctune")


@dataclass(frozen=True)
class ClusterMode:
    """What a ``cluster.mode`` does: where its workers are, and how they start."""

    place: Callable[[Job, Allocation | None, int | None], Placement]
    """``place(job, allocation, max_workers)``: the workers, before the partitions are counted;
    ``max_workers`` caps a mode that chooses its own count (a sample needs no more)."""
    start: Callable[[Job, ExecutionPlan], contextlib.AbstractContextManager[ClusterHandle]]
    """``start(job, plan)``: a context that starts the workers, waits for them, yields the
    :class:`~hpctune.cluster.handle.ClusterHandle` and stops them after."""


MODES: dict[str, ClusterMode] = {
    "local": ClusterMode(local_mode.place, local_mode.start),
    "allocation": ClusterMode(allocation_mode.place, allocation_mode.start),
    "jobqueue": ClusterMode(jobqueue_mode.place, jobqueue_mode.start),
}
"""Every ``cluster.mode`` but ``auto`` (decided by :func:`~hpctune.cluster.plan.choose_mode`)."""


def place(
    job: Job,
    mode: str,
    allocation: Allocation | None = None,
    *,
    client: Any = None,
    max_workers: int | None = None,
) -> Placement:
    """Where the workers of ``job`` in ``mode`` are, and how many: a caller's ``client``
    (mode ``external``), else the mode's own ``place`` (:data:`MODES`)."""
    if mode == "external":
        nthreads = client.nthreads()
        return Placement("external", len(nthreads), max(nthreads.values(), default=1))
    return MODES[mode].place(job, allocation, max_workers)


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
    with MODES[plan.mode].start(job, plan) as handle:
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
