"""The Python API: each function mirrors a command and returns objects instead of printing.

>>> import hpctune
>>> summary = hpctune.run("jobs/example.yaml")          # doctest: +SKIP
>>> summary.results.best_score.values                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import execute
from .errors import UsageError
from .partitions import parse_slice
from .progress import Progress
from .spec import Job, load_spec
from .store import Store

JobLike = Job | str | Path


def _job(job: JobLike, overrides: Iterable[str] = ()) -> Job:
    if isinstance(job, Job):
        if overrides:
            raise UsageError("overrides apply to a spec file; change the Job with model_copy")
        return job
    return load_spec(job, overrides)


def validate(job: JobLike, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Check the spec and the data's metadata; return what the run would do. Computes nothing."""
    return execute.prepare(_job(job, overrides)).describe()


def run(
    job: JobLike,
    overrides: Iterable[str] = (),
    *,
    restart: bool = False,
    slice: str | tuple[int, int] | None = None,
    client: Any = None,
    progress: bool | Progress = False,
) -> execute.RunSummary:
    """Run or resume the job's searches; ``summary.results`` is results.nc as a Dataset.

    ``slice="i/N"`` computes only the i-th of N blocks of partitions (an array task); ``client``
    runs on an existing Dask cluster instead of starting one.
    """
    part = parse_slice(slice) if isinstance(slice, str) or slice is None else tuple(slice)
    reporter = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress))
    return execute.run(
        _job(job, overrides), restart=restart, part=part, client=client, progress=reporter
    )


def merge(job: JobLike, overrides: Iterable[str] = ()) -> Any:
    """Write results.nc from the partitions recorded so far; returns it as a Dataset."""
    return execute.merge(_job(job, overrides))


def results(job: JobLike, overrides: Iterable[str] = ()) -> Any:
    """Open ``<output>/results.nc`` (loaded into memory, file closed)."""
    import xarray as xr

    path = Store(_job(job, overrides).output_dir).results_path
    if not path.exists():
        raise UsageError(f"no results yet: {path} does not exist (run the job first)")
    with xr.open_dataset(path) as ds:
        return ds.load()
