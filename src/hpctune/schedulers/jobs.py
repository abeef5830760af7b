"""What every scheduler says about jobs: dependencies between them, and their states.

A scheduler's status commands answer in its own words (``COMPLETED``, ``F``, ``DONE``); each
scheduler module maps them to a phase (pending, running, done, unknown) and :func:`summarise`
makes one :class:`JobState` of a job's tasks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

DEPENDENCY_TYPES = ("after", "afterany", "afterok", "afternotok")
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9._\[\]-]+$")


@dataclass(frozen=True)
class Dependency:
    """Start after other jobs: ``afterok:ID`` (default type ``afterok``)."""

    type: str
    job_ids: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Dependency:
        """``ID`` or ``TYPE:ID[:ID...]`` as given to ``submit --after``."""
        kind, sep, rest = text.strip().partition(":")
        if sep and kind in DEPENDENCY_TYPES:
            ids = tuple(rest.split(":"))
        elif sep and not kind.isdigit():
            raise UsageError(
                f"--after: unknown dependency type {kind!r}; use one of "
                f"{', '.join(DEPENDENCY_TYPES)}, e.g. --after afterany:1234"
            )
        else:
            kind, ids = "afterok", (text.strip(),)
        for job_id in ids:
            if not JOB_ID_PATTERN.match(job_id):
                raise UsageError(f"--after: {job_id!r} is not a job id (e.g. 1234 or 1234.server)")
        return cls(kind, ids)


@dataclass
class JobState:
    """What the scheduler says about one submitted job (all tasks, for an array)."""

    job_id: str
    state: str
    """The scheduler's own word: COMPLETED, RUNNING, ... (SLURM); F, R, Q, C ... (PBS)."""
    phase: str
    """pending, running, done or unknown (the scheduler no longer knows the job)."""
    source: str
    """The command that answered: sacct, squeue, scontrol, qstat, or none."""
    exit_code: int | None = None
    reason: str | None = None
    tasks: dict[str, str] = field(default_factory=dict)
    """Array tasks (``ID_task`` or ``ID[task]``) and their states."""

    def to_dict(self) -> dict[str, Any]:
        """The state as it appears in ``status --json``."""
        return {
            "job_id": self.job_id,
            "state": self.state,
            "phase": self.phase,
            "source": self.source,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "tasks": dict(self.tasks),
        }

    @classmethod
    def unknown(cls, job_id: str) -> JobState:
        """A job the scheduler no longer knows (finished and forgotten, or never its own)."""
        return cls(job_id, "UNKNOWN", "unknown", "none", reason="no longer known to the scheduler")


def summarise(
    job_id: str,
    tasks: Mapping[str, str],
    phase_of: Mapping[str, str],
    source: str,
    *,
    exit_code: int | None = None,
    reason: str | None = None,
    ok_states: Iterable[str] = (),
) -> JobState:
    """One state for a job from the states of its tasks (one task for a plain job).

    Running beats pending beats done; a finished array is its first state that is not a
    success (so one FAILED task shows), else the success state.
    """
    states = list(tasks.values())
    phases = [phase_of.get(s, "unknown") for s in states]
    ok = set(ok_states)
    for wanted in ("running", "pending"):
        if wanted in phases:
            state = next(s for s, p in zip(states, phases, strict=True) if p == wanted)
            break
    else:
        if "unknown" in phases:
            state = next(s for s, p in zip(states, phases, strict=True) if p == "unknown")
        else:
            state = next((s for s in states if s not in ok), states[0])
    phase = phase_of.get(state, "unknown")
    shown = dict(tasks) if len(tasks) > 1 or next(iter(tasks)) != job_id else {}
    return JobState(job_id, state, phase, source, exit_code, reason, shown)
