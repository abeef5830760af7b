"""SLURM: ``sbatch --parsable``, states from sacct (where accounting answers) or squeue and
scontrol, ``scancel``, and ``MaxArraySize`` from ``scontrol show config``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .common import (
    Dependency,
    JobState,
    Scheduler,
    bad_output,
    run_command,
    summarise,
)

PENDING = {
    "PENDING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESV_DEL_HOLD",
    "SUSPENDED",
}
RUNNING = {
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
}
DONE = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "REVOKED",
    "SPECIAL_EXIT",
    "TIMEOUT",
}
PHASE = {
    **dict.fromkeys(PENDING, "pending"),
    **dict.fromkeys(RUNNING, "running"),
    **dict.fromkeys(DONE, "done"),
}
PARSABLE = re.compile(r"^(\d+)(?:;([A-Za-z0-9._-]+))?$")
KEY_VALUE_SPLIT = re.compile(r"\s+(?=[A-Za-z][\w:/]*=)")
MAX_ARRAY = re.compile(r"^MaxArraySize\s*=\s*(\d+)", re.MULTILINE)


def _clusters(cluster: str | None) -> list[str]:
    return [f"--clusters={cluster}"] if cluster else []


def parse_key_values(line: str) -> dict[str, str]:
    """One line of ``scontrol -o show job``: space-separated ``Key=Value`` pairs."""
    found: dict[str, str] = {}
    for item in KEY_VALUE_SPLIT.split(line.strip()):
        key, sep, value = item.partition("=")
        if sep:
            found[key] = value
    return found


def _exit_code(text: str | None) -> int | None:
    """``ExitCode=2:0`` -> 2 (the signal part is dropped)."""
    if not text:
        return None
    head = text.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def _summary(job_id: str, tasks: dict[str, str], source: str, **details: Any) -> JobState:
    return summarise(job_id, tasks, PHASE, source, ok_states=["COMPLETED"], **details)


def _reason(text: str | None) -> str | None:
    return None if text in (None, "", "None", "(null)") else text


def _base_id(job_id: str) -> str:
    return job_id.split("_", 1)[0].split(".", 1)[0]


class Slurm(Scheduler):
    kind = "slurm"
    submit_program = "sbatch"

    def submit_command(
        self, script: str, *, after: Sequence[Dependency] = (), cluster: str | None = None
    ) -> list[str]:
        command = ["sbatch", "--parsable", *_clusters(cluster)]
        if after:
            value = ",".join(f"{d.type}:{':'.join(d.job_ids)}" for d in after)
            command.append(f"--dependency={value}")
        return [*command, script]

    def parse_job_id(self, stdout: str, command: Sequence[str]) -> tuple[str, str | None]:
        """``sbatch --parsable`` prints ``ID`` or ``ID;cluster`` (after any warnings)."""
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        match = PARSABLE.match(lines[-1]) if lines else None
        if not match:
            raise bad_output(command, stdout, "a job id such as 1234 or 1234;cluster")
        return match.group(1), match.group(2)

    # ------------------------------------------------------------------ states

    def states(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobState]:
        found: dict[str, JobState] = {}
        by_cluster: dict[str | None, list[str]] = {}
        for job_id, cluster in jobs:
            by_cluster.setdefault(cluster, []).append(job_id)
        for cluster, ids in by_cluster.items():
            found.update(self._sacct(ids, cluster))
            queued = self._squeue([i for i in ids if i not in found], cluster)
            for job_id in ids:
                if job_id in found:
                    continue
                queued_tasks = queued.get(job_id, {})
                tasks = {task: state for task, (state, _reason) in queued_tasks.items()}
                # A plain job in the queue is known; otherwise ask scontrol, which also knows
                # finished jobs (for MinJobAge) and the finished tasks of an array.
                if list(tasks) == [job_id]:
                    reason = queued_tasks[job_id][1]
                    found[job_id] = _summary(job_id, tasks, "squeue", reason=_reason(reason))
                    continue
                state = self._scontrol(job_id, cluster)
                if state is None and tasks:
                    state = _summary(job_id, tasks, "squeue")
                found[job_id] = state or JobState.unknown(job_id)
        return found

    def _sacct(self, ids: list[str], cluster: str | None) -> dict[str, JobState]:
        """States from accounting; {} where it is not configured (no slurmdbd)."""
        command = [
            "sacct", "--noheader", "--parsable2", "--allocations", *_clusters(cluster),
            "--format=JobID,State,ExitCode", f"--jobs={','.join(ids)}",
        ]  # fmt: skip
        proc = run_command(command, check=False)
        if proc.returncode != 0:
            return {}
        tasks: dict[str, dict[str, str]] = {}
        codes: dict[str, int | None] = {}
        for line in proc.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) < 3 or not parts[0]:
                continue
            task, state, code = parts[0], parts[1].split()[0] if parts[1] else "UNKNOWN", parts[2]
            base = _base_id(task)
            tasks.setdefault(base, {})[task] = state
            if task == base:
                codes[base] = _exit_code(code)
        return {
            job_id: _summary(job_id, tasks[job_id], "sacct", exit_code=codes.get(job_id))
            for job_id in ids
            if job_id in tasks
        }

    def _squeue(self, ids: list[str], cluster: str | None) -> dict[str, dict[str, tuple[str, str]]]:
        """Queued jobs and array tasks (one line per task): {job id: {task: (state, reason)}}."""
        if not ids:
            return {}
        command = [
            "squeue", "--noheader", "--array", *_clusters(cluster),
            "--format=%i|%T|%r", f"--jobs={','.join(ids)}",
        ]  # fmt: skip
        proc = run_command(command, check=False)
        if proc.returncode != 0:
            return {}  # every id has left the queue ("Invalid job id specified")
        queued: dict[str, dict[str, tuple[str, str]]] = {}
        for line in proc.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                queued.setdefault(_base_id(parts[0]), {})[parts[0]] = (parts[1], parts[2])
        return queued

    def _scontrol(self, job_id: str, cluster: str | None) -> JobState | None:
        command = ["scontrol", *_clusters(cluster), "--oneliner", "show", "job", job_id]
        proc = run_command(command, check=False)
        if proc.returncode != 0:
            return None
        records = [parse_key_values(line) for line in proc.stdout.splitlines() if line.strip()]
        tasks: dict[str, str] = {}
        for record in records:
            if record.get("ArrayTaskId"):
                key = f"{record.get('ArrayJobId', record.get('JobId'))}_{record['ArrayTaskId']}"
            else:
                key = record.get("JobId", job_id)
            tasks[key] = record.get("JobState", "UNKNOWN")
        if not tasks:
            return None
        single = records[0] if len(records) == 1 else {}
        reason = single.get("Reason")
        return _summary(
            job_id,
            tasks,
            "scontrol",
            exit_code=_exit_code(single.get("ExitCode")) if single else None,
            reason=_reason(reason),
        )

    # ------------------------------------------------------------------ cancel, limits

    def cancel(self, jobs: Sequence[tuple[str, str | None]]) -> list[str]:
        by_cluster: dict[str | None, list[str]] = {}
        for job_id, cluster in jobs:
            by_cluster.setdefault(cluster, []).append(job_id)
        commands = []
        for cluster, ids in by_cluster.items():
            command = ["scancel", *_clusters(cluster), *ids]
            run_command(command)
            commands.append(" ".join(command))
        return commands

    def max_array_size(self) -> int | None:
        """Tasks per array: indices run 0 .. MaxArraySize - 1."""
        proc = run_command(["scontrol", "show", "config"])
        match = MAX_ARRAY.search(proc.stdout)
        return int(match.group(1)) if match else None
