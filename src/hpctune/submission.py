"""Submit a job to its scheduler, follow it and cancel it; ``<output>/jobs.json`` remembers it.

A submission is one job script, or, with ``array=N``, the partitions spread over N array tasks
(each runs ``hpctune run JOB --slice i/N``) plus a merge job that waits for all of them
(``afterany``: a failed task does not keep the others' results from being merged) and writes
results.nc. N above the site's array limit (SLURM's MaxArraySize) is split into several arrays,
each with indices from 0; their tasks add the array's offset to their index.

The scripts are written next to the logs (``<log_dir>/<name>.<submission>.<role>.sh``) and
submitted from there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import check_job, partition_count
from .errors import OutputError, SchedulerError, UsageError
from .output.files import take_lock, write_atomic
from .output.folder import Store
from .output.status import StatusCounts
from .render import ArrayPart, render_script
from .schedulers.commands import command_text
from .schedulers.jobs import Dependency, JobState
from .schedulers.registry import DEFAULT_KIND, get_scheduler
from .spec import Job

log = logging.getLogger("hpctune")

JOBS_FILE = "jobs.json"


# --------------------------------------------------------------------------- planning


@dataclass
class PlannedJob:
    """One script of a submission, before it is submitted."""

    role: str
    """``run`` (the whole job), ``array`` (a block of slices) or ``merge``."""
    script: str
    path: Path
    array: ArrayPart | None = None
    after: list[Dependency] = field(default_factory=list)
    waits_for: list[int] = field(default_factory=list)
    """Indices of earlier jobs of this submission that it waits for (``afterany``)."""


def array_parts(slices: int, max_size: int | None) -> list[ArrayPart]:
    """``slices`` array tasks as arrays of at most ``max_size`` tasks, each indexed from 0."""
    if slices < 1:
        raise UsageError(f"--array must be at least 1; got {slices}")
    step = slices if not max_size or max_size < 1 else max_size
    return [
        ArrayPart(offset=offset, size=min(step, slices - offset), slices=slices)
        for offset in range(0, slices, step)
    ]


def plan_submission(
    job: Job,
    overrides: Sequence[str] = (),
    *,
    submission: int = 1,
    array: int | None = None,
    max_array: int | None = None,
    after: Sequence[Dependency] = (),
    template_dir: Any = None,
    workdir: str | Path | None = None,
) -> list[PlannedJob]:
    """The scripts of one submission, rendered (a pure function: nothing is written)."""
    stem = f"{job.name}.{submission}"
    log_dir = job.log_dir

    def render(step: str, part: ArrayPart | None = None) -> str:
        return render_script(
            job,
            step=step,  # type: ignore[arg-type]
            array=part,
            overrides=overrides,
            workdir=workdir,
            template_dir=template_dir,
        )

    if array is None:
        return [PlannedJob("run", render("run"), log_dir / f"{stem}.run.sh", after=list(after))]
    parts = array_parts(array, max_array)
    planned = [
        PlannedJob(
            "array",
            render("run", part),
            log_dir / (f"{stem}.array{k}.sh" if len(parts) > 1 else f"{stem}.array.sh"),
            array=part,
            after=list(after),
        )
        for k, part in enumerate(parts)
    ]
    planned.append(
        PlannedJob(
            "merge",
            render("merge"),
            log_dir / f"{stem}.merge.sh",
            waits_for=list(range(len(parts))),
        )
    )
    return planned


# --------------------------------------------------------------------------- jobs.json


def jobs_path(job: Job) -> Path:
    return job.output_dir / JOBS_FILE


def load_records(job: Job) -> list[dict[str, Any]]:
    """The jobs recorded for this output folder, oldest first ([] if none)."""
    path = jobs_path(job)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise OutputError(f"cannot read {path}: {exc}") from None
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, list):
        raise OutputError(f"cannot read {path}: no list of jobs in it")
    return jobs


@contextlib.contextmanager
def _locked_records(job: Job) -> Iterator[list[dict[str, Any]]]:
    """The recorded jobs, to extend in place; written back (atomically) on exit."""
    path = jobs_path(job)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = take_lock(path.parent / f".{JOBS_FILE}.lock", wait=True)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    assert lock is not None  # waited for
    try:
        records = load_records(job)
        count = len(records)
        try:
            yield records
        finally:
            if len(records) != count:
                payload = {"name": job.name, "jobs": records}
                write_atomic(path, (json.dumps(payload, indent=2) + "\n").encode())
    finally:
        lock.release()  # and its file: a submit waiting for it locks a new one


def _next_submission(records: Iterable[dict[str, Any]]) -> int:
    return max((int(r.get("submission", 0)) for r in records), default=0) + 1


# --------------------------------------------------------------------------- submitting


@dataclass
class Submission:
    """What ``submit`` did (or, for a dry run, would do)."""

    name: str
    output: str
    kind: str
    dry_run: bool
    jobs: list[dict[str, Any]]
    """One record per script: role, job_id (None in a dry run), script, command, array ..."""
    scripts: list[str] = field(default_factory=list, repr=False)
    """The scripts' text, in the order of ``jobs``."""
    notes: list[str] = field(default_factory=list)

    @property
    def job_ids(self) -> list[str]:
        return [str(j["job_id"]) for j in self.jobs if j.get("job_id") is not None]

    @property
    def job_id(self) -> str | None:
        """The job whose end means the results are complete: the run, or the merge job."""
        ids = self.job_ids
        return ids[-1] if ids else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "job_id": self.job_id,
            "job_ids": self.job_ids,
            "name": self.name,
            "output": self.output,
            "scheduler": self.kind,
            "dry_run": self.dry_run,
            "jobs": self.jobs,
        }
        if self.dry_run:
            data["scripts"] = self.scripts
        return data


def _partition_count(job: Job) -> int:
    return check_job(job).partitioning.size


def submit(
    job: Job,
    overrides: Sequence[str] = (),
    *,
    array: int | None = None,
    after: str | Sequence[str] | None = None,
    dry_run: bool = False,
    template_dir: Any = None,
) -> Submission:
    """Render the job's script(s), submit them, and record the job ids in jobs.json.

    The spec and its data are checked first (exit 2 before anything is queued), and the output
    folder must not hold results of another spec.
    """
    kind = job.scheduler.kind
    scheduler = get_scheduler(kind)
    dependencies = [
        Dependency.parse(a) for a in ([after] if isinstance(after, str) else after or [])
    ]
    partitions = _partition_count(job)
    if array is not None and array > partitions:
        raise UsageError(
            f"--array {array}: the job has {partitions} partition(s); "
            f"use at most --array {partitions}"
        )
    Store(job.output_dir).check_compatible(job)
    notes: list[str] = []
    max_array = None
    if array is not None:
        try:
            max_array = scheduler.max_array_size()
        except SchedulerError as exc:
            if not dry_run:
                raise
            notes.append(f"array size limit unknown ({exc}); not split")
        if max_array and array > max_array:
            notes.append(
                f"{array} array tasks exceed the site's limit of {max_array} per array: "
                f"split into {-(-array // max_array)} arrays"
            )

    def make_plan(submission: int) -> list[PlannedJob]:
        return plan_submission(
            job,
            overrides,
            submission=submission,
            array=array,
            max_array=max_array,
            after=dependencies,
            template_dir=template_dir,
        )

    result = Submission(job.name, str(job.output_dir), kind, dry_run, [], notes=notes)
    if dry_run:
        submission = _next_submission(load_records(job))
        planned = make_plan(submission)
        for item in planned:
            placeholders = tuple(f"<job id of {planned[i].path.name}>" for i in item.waits_for)
            command = scheduler.submit_command(
                item.path.name, after=_dependencies(item, placeholders)
            )
            result.jobs.append(_record(item, kind, submission, None, None, command))
            result.scripts.append(item.script)
        return result

    make_plan(1)  # render before creating anything: a template error leaves no trace
    _make_folders(job)
    with _locked_records(job) as records:
        submission = _next_submission(records)
        submitted: list[str] = []
        for item in make_plan(submission):
            write_atomic(item.path, item.script.encode(), mode=0o755)
            job_id, cluster, command = scheduler.submit(
                item.path, after=_dependencies(item, tuple(submitted[i] for i in item.waits_for))
            )
            submitted.append(job_id)
            record = _record(item, kind, submission, job_id, cluster, command)
            records.append(record)
            result.jobs.append(record)
            result.scripts.append(item.script)
            log.info("submitted %s job %s (%s)", item.role, job_id, item.path)
    return result


def _dependencies(item: PlannedJob, waits_for: tuple[str, ...]) -> list[Dependency]:
    return item.after + ([Dependency("afterany", waits_for)] if waits_for else [])


def _record(
    item: PlannedJob,
    kind: str,
    submission: int,
    job_id: str | None,
    cluster: str | None,
    command: list[str],
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "cluster": cluster,
        "scheduler": kind,
        "role": item.role,
        "submission": submission,
        "submitted": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "script": str(item.path),
        "array": None
        if item.array is None
        else {"offset": item.array.offset, "size": item.array.size, "slices": item.array.slices},
        "command": command,
        "cwd": str(item.path.parent),
    }


def _make_folders(job: Job) -> None:
    for folder in (job.output_dir, job.log_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from None


def dry_run_text(result: Submission) -> str:
    """The scripts and the commands that would submit them."""
    chunks = []
    for record, script in zip(result.jobs, result.scripts, strict=True):
        chunks.append(f"# ---- {record['role']} job script: {record['script']}\n{script}")
        chunks.append(
            f"# submit: cd {shlex.quote(record['cwd'])} && {command_text(record['command'])}\n"
        )
    for note in result.notes:
        chunks.append(f"# note: {note}\n")
    return "".join(chunks)


# --------------------------------------------------------------------------- following


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
        return {
            "name": self.name,
            "output": self.output,
            "partitions": self.partitions,
            "jobs": self.jobs,
            "spec_changed": self.spec_changed,
        }

    @property
    def active(self) -> list[dict[str, Any]]:
        """Recorded jobs still pending or running."""
        return [j for j in self.jobs if j.get("phase") in ("pending", "running")]


def partition_counts(job: Job) -> dict[str, int | None]:
    """ok, skipped, failed and pending partitions from what the runs recorded so far."""
    store = Store(job.output_dir)
    records = store.records()
    manifest = None
    with contextlib.suppress(OutputError):
        manifest = store.manifest()
    total = manifest.get("partitions") if manifest else None
    if total is None:
        with contextlib.suppress(Exception):  # data unreadable here: counts without a total
            total = partition_count(job)
    return StatusCounts.from_records(records.values(), total).to_dict()


def status(job: Job) -> Status:
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
