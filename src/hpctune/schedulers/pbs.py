"""PBS Professional (and OpenPBS) and Torque: ``qsub``, ``qstat``, ``qdel``.

``qstat -f`` prints one block per job::

    Job Id: 1234.server
        Job_Name = demo
        job_state = R
        Variable_List = PBS_O_HOME=/home/alice,PBS_O_LANG=C,
    \tPBS_O_WORKDIR=/home/alice

Attributes are indented ``key = value`` lines; a long value goes on over lines that begin with
a tab. PBS Professional also prints JSON (``qstat -f -F json``) and keeps finished jobs for
``qstat -x`` (state ``F``); Torque shows finished jobs as ``C`` for a while (keep_completed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from .common import Dependency, JobState, Scheduler, bad_output, run_command, summarise

#: Job states of PBS Professional and Torque (one letter each).
PHASE = {
    "Q": "pending",  # queued
    "H": "pending",  # held
    "W": "pending",  # waiting for its start time
    "T": "pending",  # being moved
    "M": "pending",  # moved to another server
    "R": "running",
    "E": "running",  # exiting
    "B": "running",  # an array whose subjobs have begun (PBS Professional)
    "S": "running",  # suspended
    "U": "running",  # suspended while the workstation is busy
    "F": "done",  # finished (PBS Professional, qstat -x)
    "X": "done",  # a finished subjob (PBS Professional)
    "C": "done",  # completed (Torque)
}
ATTRIBUTE = re.compile(r"^\s+([A-Za-z_][\w.]*) = ?(.*)$")
JOB_ID_LINE = re.compile(r"^Job Id:\s*(\S+)")
QSUB_ID = re.compile(r"^(\d+(?:\[\d*\])?(?:\.[A-Za-z0-9._-]+)?)$")
SERVER_ATTRIBUTE = re.compile(r"^\s+(max_array_size|max_job_array_size) = (\d+)", re.MULTILINE)


def parse_qstat_f(text: str) -> dict[str, dict[str, str]]:
    """``qstat -f`` text (PBS Professional or Torque) as {job id: {attribute: value}}."""
    jobs: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    last_key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        head = JOB_ID_LINE.match(line)
        if head:
            current = jobs.setdefault(head.group(1), {})
            last_key = None
            continue
        if current is None:
            continue
        attribute = ATTRIBUTE.match(line)
        if attribute:
            last_key = attribute.group(1)
            current[last_key] = attribute.group(2).strip()
        elif last_key is not None and line[:1] == "\t":
            current[last_key] += line[1:].rstrip()  # the value goes on (wrapped mid-word)
    return jobs


def parse_qstat_json(text: str) -> dict[str, dict[str, Any]]:
    """``qstat -f -F json`` (PBS Professional) as {job id: {attribute: value}}."""
    data = json.loads(text)
    jobs = data.get("Jobs", {}) if isinstance(data, dict) else {}
    return {str(k): v for k, v in jobs.items() if isinstance(v, dict)}


def _attribute(attributes: dict[str, Any], name: str) -> Any:
    for key, value in attributes.items():
        if key.lower() == name.lower():
            return value
    return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _short(job_id: str) -> str:
    """``1234.server`` -> ``1234``; ``1234[].server`` -> ``1234[]``."""
    return job_id.split(".", 1)[0]


def _array_parent(job_id: str) -> str | None:
    """``1234[5].server`` -> ``1234[]`` (the short id of its array)."""
    match = re.match(r"^(\d+)\[(\d+)\]", job_id)
    return f"{match.group(1)}[]" if match else None


class PBSPro(Scheduler):
    """PBS Professional / OpenPBS."""

    kind = "pbs"
    submit_program = "qsub"
    array_dependency = "afterany"

    def submit_command(
        self, script: str, *, after: Sequence[Dependency] = (), cluster: str | None = None
    ) -> list[str]:
        command = ["qsub"]
        if after:
            parts = []
            for dep in after:
                arrays = [i for i in dep.job_ids if "[]" in i]
                if dep.type != "afterany" or not arrays or self.array_dependency == dep.type:
                    parts.append(f"{dep.type}:{':'.join(dep.job_ids)}")
                    continue
                # Torque waits for an array with its own type, for a plain job with afterany:
                # a split array's one-task part is a plain job.
                plain = [i for i in dep.job_ids if "[]" not in i]
                parts.append(f"{self.array_dependency}:{':'.join(arrays)}")
                if plain:
                    parts.append(f"afterany:{':'.join(plain)}")
            command += ["-W", f"depend={','.join(parts)}"]
        return [*command, script]

    def parse_job_id(self, stdout: str, command: Sequence[str]) -> tuple[str, str | None]:
        """qsub prints the job id, e.g. ``1234.server`` or ``1234[].server`` for an array."""
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        if not lines or not QSUB_ID.match(lines[-1]):
            raise bad_output(command, stdout, "a job id such as 1234.server")
        return lines[-1], None

    # ------------------------------------------------------------------ states

    def query(self, job_ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], str]:
        """Attributes of the jobs (and of array subjobs) from qstat."""
        command = ["qstat", "-f", "-x", "-t", "-F", "json", *job_ids]
        proc = run_command(command, check=False)
        # Unknown ids make qstat exit non-zero but it still prints the jobs it knows.
        if proc.stdout.lstrip().startswith("{"):
            try:
                return parse_qstat_json(proc.stdout), "qstat"
            except ValueError:
                pass
        command = ["qstat", "-f", "-x", "-t", *job_ids]
        proc = run_command(command, check=False)
        return parse_qstat_f(proc.stdout), "qstat"

    def states(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobState]:
        ids = [job_id for job_id, _cluster in jobs]
        if not ids:
            return {}
        attributes, source = self.query(ids)
        by_short: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for full_id, attrs in attributes.items():
            by_short.setdefault(_short(full_id), []).append((full_id, attrs))
            parent = _array_parent(full_id)
            if parent:
                by_short.setdefault(parent, []).append((full_id, attrs))
        found = {}
        for job_id in ids:
            entries = by_short.get(_short(job_id), [])
            subjobs = [(i, a) for i, a in entries if _array_parent(i)]
            chosen = subjobs or entries
            if not chosen:
                found[job_id] = JobState.unknown(job_id)
                continue
            tasks = {i: str(_attribute(a, "job_state") or "?") for i, a in chosen}
            codes = [_int(_attribute(a, "Exit_status")) for _i, a in chosen]
            known = [c for c in codes if c is not None]
            exit_code = next((c for c in known if c != 0), 0) if known else None
            comment = _attribute(entries[0][1], "comment") if len(entries) == 1 else None
            found[job_id] = summarise(
                job_id,
                tasks,
                PHASE,
                source,
                exit_code=exit_code,
                reason=str(comment) if comment else None,
            )
        return found

    # ------------------------------------------------------------------ cancel, limits

    def cancel(self, jobs: Sequence[tuple[str, str | None]]) -> list[str]:
        command = ["qdel", *(job_id for job_id, _cluster in jobs)]
        run_command(command)
        return [" ".join(command)]

    def max_array_size(self) -> int | None:
        proc = run_command(["qstat", "-B", "-f"], check=False)
        match = SERVER_ATTRIBUTE.search(proc.stdout) if proc.returncode == 0 else None
        return int(match.group(2)) if match else None


class Torque(PBSPro):
    """Torque (and qsub wrappers of other schedulers that speak its language)."""

    kind = "torque"
    array_dependency = "afteranyarray"

    def query(self, job_ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], str]:
        """Torque has no JSON and no ``-x``: ``qstat -f`` per job (arrays with ``-t``)."""
        found: dict[str, dict[str, Any]] = {}
        for job_id in job_ids:
            command = ["qstat", "-f", *(["-t"] if "[" in job_id else []), job_id]
            proc = run_command(command, check=False)
            found.update(parse_qstat_f(proc.stdout))
        return found, "qstat"
