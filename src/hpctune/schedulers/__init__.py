"""The batch systems hpctune submits to, found by ``scheduler.kind``."""

from __future__ import annotations

from ..errors import UsageError
from .common import Dependency, JobState, Scheduler, run_command
from .pbs import PBSPro, Torque
from .slurm import Slurm

SCHEDULERS: dict[str, type[Scheduler]] = {"slurm": Slurm, "pbs": PBSPro, "torque": Torque}


def get_scheduler(kind: str) -> Scheduler:
    """The scheduler of ``kind`` (slurm, pbs, torque)."""
    try:
        return SCHEDULERS[kind]()
    except KeyError:
        raise UsageError(
            f"unknown scheduler {kind!r}; available: {', '.join(SCHEDULERS)}"
        ) from None


__all__ = [
    "SCHEDULERS",
    "Dependency",
    "JobState",
    "PBSPro",
    "Scheduler",
    "Slurm",
    "Torque",
    "get_scheduler",
    "run_command",
]
