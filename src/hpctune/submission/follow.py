"""Follow the jobs recorded in jobs.json (``status``) and cancel those still queued or running
(``cancel``), each through its own batch system."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..checks import partition_count
from ..errors import OutputError, SchedulerError
from ..output.folder import Store
from ..schedulers.jobs import JobState
from ..schedulers.registry import DEFAULT_KIND, get_scheduler
from ..spec import Job
from .records import load_records

log = logging.getLogger("hpctune")


@dataclass
class Status:
    """The recorded jobs' states and the partitions' progress, as ``hpctune status`` shows."""

    name: str
    output: str
    partitions: dict[str, int | None]
    jobs: list[dict[str, Any]]
    spec_changed: list[str] = field(default_factory=list)
    """Keys that decide results in which the spec differs from that of the partitions counted
    (they are that spec's); empty when they are this spec's."""

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``hpctune status``."""
        return {
            "name": self.name,
            "output": self.output,
            "partitions": self.partitions,
            "jobs": self.jobs,
            "spec_changed": self.spec_changed,
        }

    def lines(self) -> list[str]:
        """What ``hpctune status`` prints: the partitions counted, then one line per job."""
        parts = self.partitions
        total = parts["total"] if parts["total"] is not None else "?"
        pending = parts["pending"] if parts["pending"] is not None else "?"
        lines = [
            f"{self.name}: {total} partitions: {parts['ok']} ok, {parts['skipped']} skipped, "
            f"{parts['failed']} failed, {pending} pending"
        ]
        if not self.jobs:
            lines.append("  no jobs submitted yet (hpctune submit)")
        for entry in self.jobs:
            line = f"  {entry['job_id']:<12} {entry['role']:<6} {entry['state']}"
            if entry.get("exit_code") not in (None, 0):
                line += f" (exit code {entry['exit_code']})"
            if entry.get("tasks"):
                counts: dict[str, int] = {}
                for state in entry["tasks"].values():
                    counts[state] = counts.get(state, 0) + 1
                line += " [" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + "]"
            if entry.get("reason"):
                line += f" ({entry['reason']})"
            lines.append(line)
        return lines

    @property
    def active(self) -> list[dict[str, Any]]:
        """Recorded jobs still pending or running."""
        return [j for j in self.jobs if j.get("phase") in ("pending", "running")]


def partition_counts(job: Job) -> dict[str, int | None]:
    """ok, skipped, failed and pending partitions from what the runs recorded so far."""
    store = Store(job.output_dir)
    latest = store.latest()
    manifest = None
    with contextlib.suppress(OutputError):
        manifest = store.manifest()
    total = manifest.get("partitions") if manifest else None
    if total is None:
        with contextlib.suppress(Exception):  # data unreadable here: counts without a total
            total = partition_count(job)
    return latest.counts(total=None if total is None else int(total)).to_dict()


def status(job: Job) -> Status:
    """Each recorded job's state, asked of its batch system (unknown where it cannot answer),
    and the partitions counted from the journals."""
    records = load_records(job)
    states: dict[tuple[str, str], JobState] = {}
    by_kind: dict[str, list[tuple[str, str | None]]] = {}
    for record in records:
        if record.get("job_id") is not None:
            by_kind.setdefault(record.get("scheduler", DEFAULT_KIND), []).append(
                (str(record["job_id"]), record.get("cluster"))
            )
    for kind, jobs in by_kind.items():
        try:
            found = get_scheduler(kind).states(jobs)
        except SchedulerError as exc:  # e.g. no scheduler on this machine: still count partitions
            log.warning("cannot read job states: %s", exc)
            found = {
                job_id: JobState(job_id, "UNKNOWN", "unknown", "none", reason=str(exc))
                for job_id, _cluster in jobs
            }
        for job_id, state in found.items():
            states[(kind, job_id)] = state
    jobs = []
    for record in records:
        kind = record.get("scheduler", DEFAULT_KIND)
        state = states.get((kind, str(record.get("job_id"))))
        entry = {k: record.get(k) for k in ("job_id", "role", "submission", "array", "submitted")}
        entry["scheduler"] = kind
        entry.update(
            (state or JobState.unknown(str(record.get("job_id")))).to_dict()
            | {"job_id": record.get("job_id")}
        )
        jobs.append(entry)
    changed: list[str] = []
    with contextlib.suppress(OutputError):  # an unreadable manifest: counted without it
        changed = Store(job.output_dir).changed_keys(job)
    return Status(job.name, str(job.output_dir), partition_counts(job), jobs, changed)


def cancel(job: Job, job_ids: Iterable[str] | None = None) -> list[str]:
    """Cancel the recorded jobs that are still pending or running (or only ``job_ids``)."""
    wanted = None if job_ids is None else {str(i) for i in job_ids}
    current = status(job)
    by_kind: dict[str, list[tuple[str, str | None]]] = {}
    clusters = {str(r["job_id"]): r.get("cluster") for r in load_records(job) if r.get("job_id")}
    cancelled = []
    for entry in current.active:
        job_id = str(entry["job_id"])
        if wanted is not None and job_id not in wanted:
            continue
        by_kind.setdefault(entry["scheduler"], []).append((job_id, clusters.get(job_id)))
        cancelled.append(job_id)
    for kind, jobs in by_kind.items():
        get_scheduler(kind).cancel(jobs)
    return cancelled
