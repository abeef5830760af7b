"""Workers per node of an allocation: how many start on each of its hosts, with how much of
its memory. What the batch system gave the job (its nodes and their CPUs, read from the
environment) is each scheduler's :meth:`~hpctune.schedulers.base.Scheduler.detect`."""

from __future__ import annotations

import logging

from ..schedulers.base import Allocation
from ..schedulers.launch import Layout
from ..schedulers.registry import SCHEDULERS
from ..spec import ClusterSpec

log = logging.getLogger("hpctune")

LOW_WORKER_MEMORY = 2**30
"""Below this much memory per worker process (a worker with scikit-learn loaded uses about
300-400 MiB before any data), a warning says to ask for more."""


def plan_layout(allocation: Allocation, spec: ClusterSpec) -> Layout:
    """Workers per host: ``cluster.workers`` if given, else as many as the host's CPUs allow
    with ``cluster.threads`` threads each, so that every allocated core works."""
    threads = spec.threads
    scheduler = SCHEDULERS[allocation.kind]()
    workers = []
    for host, cpus in zip(allocation.hosts, allocation.cpus, strict=True):
        wanted = spec.workers or max(1, cpus // threads)
        scheduler.check_layout(allocation, host, cpus, wanted, threads)
        workers.append(wanted)
    memory: list[int | None] = []
    for index, count in enumerate(workers):
        node_memory = allocation.memory_of(index)
        memory.append(None if node_memory is None else node_memory // count)
    known = [m for m in memory if m is not None]
    if known and min(known) < LOW_WORKER_MEMORY:
        hint = f" (e.g. {scheduler.memory_hint})" if scheduler.memory_hint else ""
        log.warning(
            "each worker gets %d MiB of the allocation's memory: Dask pauses a worker at 80%% "
            "of it; ask for more memory%s if workers pause or restart",
            min(known) // 2**20,
            hint,
        )
    return Layout(
        hosts=allocation.hosts, workers=tuple(workers), threads=threads, memory_limit=tuple(memory)
    )
