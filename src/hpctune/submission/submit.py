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

import datetime as dt
import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..checks import check_job
from ..errors import OutputError, SchedulerError, UsageError
from ..output.files import write_atomic
from ..output.folder import Store
from ..schedulers.commands import command_text
from ..schedulers.jobs import Dependency
from ..schedulers.registry import get_scheduler
from ..spec import Job
from .records import load_records, locked_records, next_submission
from .scripts import JobScript, submission_scripts

log = logging.getLogger("hpctune")


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
        """The ids of the jobs queued, in submission order (none in a dry run)."""
        return [str(j["job_id"]) for j in self.jobs if j.get("job_id") is not None]

    @property
    def job_id(self) -> str | None:
        """The job whose end means the results are complete: the run, or the merge job."""
        ids = self.job_ids
        return ids[-1] if ids else None

    def lines(self) -> list[str]:
        """What ``hpctune submit`` says on stderr: the notes, then each job queued."""
        lines = list(self.notes)
        for record in self.jobs:
            part = record.get("array")
            what = record["role"]
            if part:
                last = part["offset"] + part["size"] - 1
                what += f" (slices {part['offset']}-{last} of {part['slices']})"
            lines.append(f"submitted {what}: job {record['job_id']}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``hpctune submit``."""
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


def partition_count(job: Job) -> int:
    """The job's partitions, from the full checks of its spec and data."""
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
    partitions = partition_count(job)
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

    def scripts_for(submission: int) -> list[JobScript]:
        return submission_scripts(
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
        submission = next_submission(load_records(job))
        scripts = scripts_for(submission)
        for item in scripts:
            placeholders = tuple(f"<job id of {scripts[i].path.name}>" for i in item.waits_for)
            command = scheduler.submit_command(
                item.path.name, after=_dependencies(item, placeholders)
            )
            result.jobs.append(_record(item, kind, submission, None, None, command))
            result.scripts.append(item.script)
        return result

    scripts_for(1)  # render before creating anything: a template error leaves no trace
    _make_folders(job)
    with locked_records(job) as records:
        submission = next_submission(records)
        submitted: list[str] = []
        for item in scripts_for(submission):
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


def _dependencies(item: JobScript, waits_for: tuple[str, ...]) -> list[Dependency]:
    return item.after + ([Dependency("afterany", waits_for)] if waits_for else [])


def _record(
    item: JobScript,
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
