"""What every scheduler shares: the one place that runs scheduler commands, job states.

Every ``sbatch``, ``squeue``, ``qsub`` ... goes through :func:`run_command`. A failure becomes a
:class:`~hpctune.errors.SchedulerError` that shows the command, its exit code and its output.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SchedulerError, UsageError

log = logging.getLogger("hpctune")

COMMAND_TIMEOUT = 60.0
"""Seconds a scheduler command may take (a busy controller can be slow, not minutes slow)."""

PHASES = ("pending", "running", "done", "unknown")
DEPENDENCY_TYPES = ("after", "afterany", "afterok", "afternotok")
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9._\[\]-]+$")


def run_command(
    command: Sequence[str],
    *,
    cwd: str | Path | None = None,
    timeout: float = COMMAND_TIMEOUT,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a scheduler command (no shell) and capture its output.

    With ``check`` a missing program, a timeout or a non-zero exit raises SchedulerError.
    """
    command = [str(part) for part in command]
    log.info("running: %s", shlex.join(command))
    try:
        proc = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise SchedulerError(
            command, None, stderr=f"{command[0]} not found on PATH (is this a login node?)"
        ) from None
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        raise SchedulerError(
            command, None, stdout=out, stderr=f"no answer within {timeout:.0f} s"
        ) from None
    if check and proc.returncode != 0:
        raise SchedulerError(command, proc.returncode, proc.stdout, proc.stderr)
    return proc


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


class Scheduler:
    """A batch system: how to submit a script, read job states, cancel jobs."""

    kind = ""
    submit_program = ""

    def submit_command(
        self, script: str, *, after: Sequence[Dependency] = (), cluster: str | None = None
    ) -> list[str]:
        raise NotImplementedError

    def parse_job_id(self, stdout: str, command: Sequence[str]) -> tuple[str, str | None]:
        """The job id (and cluster name, if any) that the submit command printed."""
        raise NotImplementedError

    def submit(
        self, script: Path, *, after: Sequence[Dependency] = (), cluster: str | None = None
    ) -> tuple[str, str | None, list[str]]:
        """Submit ``script`` from its folder; return (job id, cluster, the command run)."""
        command = self.submit_command(script.name, after=after, cluster=cluster)
        proc = run_command(command, cwd=script.parent)
        job_id, found_cluster = self.parse_job_id(proc.stdout, command)
        return job_id, found_cluster or cluster, command

    def states(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobState]:
        """States of (job id, cluster) pairs, by job id."""
        raise NotImplementedError

    def cancel(self, jobs: Sequence[tuple[str, str | None]]) -> list[str]:
        """Cancel the jobs; return the commands run."""
        raise NotImplementedError

    def max_array_size(self) -> int | None:
        """How many tasks one array may have (None: no limit known)."""
        return None


def bad_output(command: Sequence[str], stdout: str, what: str) -> SchedulerError:
    return SchedulerError(list(command), 0, stdout=f"expected {what}; got {stdout.strip()!r}")
