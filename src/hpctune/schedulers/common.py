"""Old home of what every scheduler shares; the names live in :mod:`.commands`, :mod:`.jobs`
and :mod:`.base` now and are importable from here until importers move."""

from __future__ import annotations

from .base import Scheduler
from .commands import COMMAND_TIMEOUT, bad_output, run_command
from .jobs import DEPENDENCY_TYPES, JOB_ID_PATTERN, Dependency, JobState, summarise

__all__ = [
    "COMMAND_TIMEOUT",
    "DEPENDENCY_TYPES",
    "JOB_ID_PATTERN",
    "Dependency",
    "JobState",
    "Scheduler",
    "bad_output",
    "run_command",
    "summarise",
]
