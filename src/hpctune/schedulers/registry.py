"""The batch systems hpctune knows, found by ``scheduler.kind``.

The spec's kinds, the command line's ``--scheduler`` choices, the templates' filters and the
environment variables a node reads all come from here, so that a new batch system is one module
imported on the line below (and its template).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ..errors import UsageError
from . import lsf, pbs, slurm  # noqa: F401 - each module registers its schedulers
from .base import REGISTERED, Allocation, Scheduler

SCHEDULERS: dict[str, type[Scheduler]] = {
    kind: REGISTERED[kind] for kind in sorted(REGISTERED, key=lambda k: REGISTERED[k].detect_order)
}
"""kind -> class, in detection order (SLURM first)."""

KINDS: tuple[str, ...] = tuple(SCHEDULERS)
"""Every ``scheduler.kind``."""

DEFAULT_KIND = "slurm"
"""The kind of a spec, or of a jobs.json record written before records named one, that says
none."""


def get_scheduler(kind: str) -> Scheduler:
    """The scheduler of ``kind`` (one of :data:`KINDS`)."""
    try:
        return SCHEDULERS[kind]()
    except KeyError:
        raise UsageError(
            f"unknown scheduler {kind!r}; available: {', '.join(SCHEDULERS)}"
        ) from None


def detect_allocation(environ: Mapping[str, str] | None = None) -> Allocation | None:
    """The allocation this process runs in (the first scheduler that recognises its
    environment), or None outside every batch job."""
    env = os.environ if environ is None else environ
    for cls in SCHEDULERS.values():
        found = cls.detect(env)
        if found is not None:
            return found
    return None


def scheduler_for(allocation: Allocation, spec_kind: str | None = None) -> Scheduler:
    """The scheduler that starts workers in ``allocation``: the spec's kind where it is of the
    allocation's family (a PBS job of a spec for Torque gets Torque's ``pbsdsh -h``), else the
    allocation's own (a SLURM job reached through a Torque ``qsub`` wrapper gets srun)."""
    detected = SCHEDULERS[allocation.kind]
    wanted = SCHEDULERS.get(spec_kind or "")
    if wanted is not None and issubclass(wanted, detected):
        return wanted()
    return detected()


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def filters() -> dict[str, Callable[..., str]]:
    """Every scheduler's template filters (a site template may use any of them)."""
    return {name: f for cls in SCHEDULERS.values() for name, f in cls.filters.items()}


def job_variables() -> tuple[str, ...]:
    """Variables set inside a batch job, of any scheduler."""
    return _unique([v for cls in SCHEDULERS.values() for v in cls.job_variables])


def submit_programs() -> tuple[str, ...]:
    """Every scheduler's submit command (``sbatch``, ``qsub`` ...)."""
    return _unique([cls.submit_program for cls in SCHEDULERS.values()])


def node_variables() -> tuple[str, ...]:
    """Variables that name this node, in the order they are tried."""
    return _unique([v for cls in SCHEDULERS.values() for v in cls.node_variables])


def cpu_variables() -> tuple[str, ...]:
    """Variables that hold the CPUs a job has on this node, in the order they are tried."""
    return _unique([v for cls in SCHEDULERS.values() for v in cls.cpu_variables])


def scratch_variables() -> tuple[str, ...]:
    """Variables that name node-local scratch, in the order they are tried (``TMPDIR`` last)."""
    return _unique([v for cls in SCHEDULERS.values() for v in cls.scratch_variables] + ["TMPDIR"])


def task_variables() -> tuple[str, ...]:
    """Variables that number a launcher's tasks, in the order they are tried."""
    return _unique([v for cls in SCHEDULERS.values() for v in cls.task_variables])
