"""Where a run's workers are (:class:`Placement`, each mode's ``place``) and how the run
computes on them (:class:`ExecutionPlan`, decided once by
:func:`hpctune.cluster.plan.plan_execution`): the types every cluster mode and the plan share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..schedulers.base import Allocation
from ..schedulers.launch import Layout


@dataclass(frozen=True)
class Placement:
    """Where a run's workers are, before its partitions are counted."""

    mode: str
    """``local``, ``allocation``, ``jobqueue``, or ``external`` (a caller's Dask client)."""
    workers: int
    """Worker processes (or threads' groups) expected; allocation: over all hosts."""
    threads: int
    """Tasks at once per worker."""
    allocation: Allocation | None = None
    """The batch job this process runs in, detected once by the command."""
    layout: Layout | None = None
    """Allocation mode: the workers of each host."""
    jobqueue: Any = None
    """Jobqueue mode: the worker jobs' settings (:class:`hpctune.cluster.jobqueue.JobqueuePlan`)."""

    @property
    def slots(self) -> int:
        return self.workers * self.threads


@dataclass(frozen=True)
class ExecutionPlan:
    """How a run computes, decided once by :func:`plan_execution` and only read afterwards: by
    the cluster's start, the runners, the estimate and the run's summary."""

    placement: Placement
    processes: bool
    """False: the workers are threads of the hpctune process (dask's local scheduler)."""
    granularity: str
    """``partition``: a task computes whole searches; ``fit``: each fit is a task."""
    partitions: int | None
    """The partitions left to compute when the plan was decided (None: not counted)."""
    notes: tuple[str, ...] = ()
    """Warnings the run gives once (``cluster.processes: false`` not honoured)."""
    threads_reason: str = ""
    """Why the workers are threads of this process (empty for processes)."""

    @property
    def mode(self) -> str:
        return self.placement.mode

    @property
    def workers(self) -> int:
        return self.placement.workers

    @property
    def threads(self) -> int:
        return self.placement.threads

    @property
    def slots(self) -> int:
        return self.placement.slots

    @property
    def allocation(self) -> Allocation | None:
        return self.placement.allocation
