"""``<output>/jobs.json``: the scheduler jobs ``hpctune submit`` queued for an output folder,
read by ``status``, ``cancel`` and the report; written under a lock that concurrent submits
wait for."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..output.files import take_lock, write_atomic
from ..spec import Job

JOBS_FILE = "jobs.json"


def jobs_path(job: Job) -> Path:
    """Where the jobs of ``job``'s output folder are recorded."""
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
def locked_records(job: Job) -> Iterator[list[dict[str, Any]]]:
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


def next_submission(records: Iterable[dict[str, Any]]) -> int:
    """The number of the next submission (it names the scripts: ``<name>.<n>.run.sh``)."""
    return max((int(r.get("submission", 0)) for r in records), default=0) + 1
