"""Job scripts and the batch jobs that run them: render (template lookup and context), the
scripts of one submission, submitting them, and following or cancelling the jobs recorded in
``<output>/jobs.json``."""

from .follow import Status, cancel, partition_counts, status
from .records import JOBS_FILE, jobs_path, load_records, locked_records, next_submission
from .scripts import JobScript, array_parts, submission_scripts
from .submit import Submission, dry_run_text, partition_count, submit

_locked_records = locked_records  # the old private name, still imported by tests

__all__ = [
    "JOBS_FILE",
    "JobScript",
    "Status",
    "Submission",
    "array_parts",
    "cancel",
    "dry_run_text",
    "jobs_path",
    "load_records",
    "locked_records",
    "next_submission",
    "partition_count",
    "partition_counts",
    "status",
    "submission_scripts",
    "submit",
]
