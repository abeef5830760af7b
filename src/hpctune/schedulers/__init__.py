"""Each batch system in one module (``slurm.py``, ``pbs.py``), behind the interface of
``base.py``; ``registry.py`` finds them by ``scheduler.kind``.

The names below are importable from here until their importers use the modules."""

from __future__ import annotations

from .base import Scheduler
from .commands import run_command
from .jobs import Dependency, JobState
from .pbs import PBSPro, Torque
from .registry import SCHEDULERS, get_scheduler
from .slurm import Slurm

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
