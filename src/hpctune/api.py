"""The Python API: each function mirrors a command and returns objects instead of printing.

>>> import hpctune
>>> summary = hpctune.run("jobs/example.yaml")          # doctest: +SKIP
>>> summary.results.best_score.values                    # doctest: +SKIP
"""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .data.partitions import parse_slice
from .errors import SpecChangedWarning, UsageError
from .execution import driver
from .execution.prepare import prepare
from .output.folder import Store
from .output.locate import Location, locate
from .progress import Progress
from .spec import Job, load_spec
from .units import parse_walltime

JobLike = Job | str | Path

SPEC_CHANGED_ATTR = "hpctune_spec_changed"
"""Attribute of :func:`results`' Dataset: the keys in which the spec differs from the one that
computed the results (only when it does)."""


def _job(job: JobLike, overrides: Iterable[str] = ()) -> Job:
    if isinstance(job, Job):
        if overrides:
            raise UsageError("overrides apply to a spec file; change the Job with model_copy")
        return job
    return load_spec(job, overrides)


def validate(job: JobLike, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Check the spec and the data's metadata; return what the run would do, and under
    ``spec`` the spec with every default filled in (paths resolved). Computes nothing."""
    checked = _job(job, overrides)
    return {**prepare(checked).describe(), "spec": checked.to_dict()}


def run(
    job: JobLike,
    overrides: Iterable[str] = (),
    *,
    restart: bool = False,
    slice: str | tuple[int, int] | None = None,
    client: Any = None,
    progress: bool | Progress = False,
) -> driver.RunSummary:
    """Run or resume the job's searches; ``summary.results`` is results.nc as a Dataset.

    ``slice="i/N"`` computes only the i-th of N blocks of partitions (an array task); ``client``
    runs on an existing Dask cluster instead of starting one. A slice writes its partitions,
    not results.nc: ``summary.merge_command`` is the ``hpctune merge`` that writes it.
    """
    overrides = list(overrides)
    part = parse_slice(slice) if isinstance(slice, str) or slice is None else tuple(slice)
    reporter = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress))
    summary = driver.run(
        _job(job, overrides), restart=restart, part=part, client=client, progress=reporter
    )
    if summary.slice is not None:
        summary.merge_command = _merge_command(job, overrides)
    return summary


def _merge_command(job: JobLike, overrides: Iterable[str]) -> str | None:
    """``hpctune merge`` of the spec file and overrides as given (None for a Job: the same
    spec may not be in its file)."""
    if isinstance(job, Job):
        return None
    words = ["hpctune", "merge", str(job)]
    for override in overrides:
        words += ["--set", override]
    return shlex.join(words)


def merge(job: JobLike, overrides: Iterable[str] = ()) -> Any:
    """Write results.nc from the partitions recorded so far; returns it as a Dataset."""
    return driver.merge(_job(job, overrides))


def render(
    job: JobLike,
    overrides: Iterable[str] = (),
    *,
    scheduler: str | None = None,
    template_dir: Any = None,
    relative_to: str | Path | None = None,
) -> str:
    """The job script for the job's scheduler (or ``scheduler``); nothing is submitted.

    Paths in it are absolute, or relative to ``relative_to`` (the folder it will be submitted
    from) so that the script is the same on every machine.
    """
    from .submission.render import render_script

    overrides = list(overrides)
    return render_script(
        _job(job, overrides),
        kind=scheduler,
        overrides=overrides,
        relative_to=relative_to,
        template_dir=template_dir,
    )


def submit(
    job: JobLike,
    overrides: Iterable[str] = (),
    *,
    array: int | None = None,
    after: str | None = None,
    dry_run: bool = False,
    template_dir: Any = None,
) -> Any:
    """Submit the job (``array=N``: N array tasks and a merge job); returns a Submission.

    The job ids are recorded in ``<output>/jobs.json``; ``dry_run`` only renders the scripts
    and the commands that would submit them.
    """
    from . import submission as submitting

    overrides = list(overrides)
    return submitting.submit(
        _job(job, overrides),
        overrides,
        array=array,
        after=after,
        dry_run=dry_run,
        template_dir=template_dir,
    )


def status(job: JobLike, overrides: Iterable[str] = ()) -> Any:
    """States of the recorded jobs and the partitions' progress; returns a Status.

    Partitions of another spec (the output folder holds results of a spec that differs in
    keys that decide results): a :class:`SpecChangedWarning`, and ``Status.spec_changed``
    names the keys.
    """
    from . import submission as submitting

    found = submitting.status(_job(job, overrides))
    _warn_spec_changed(found.output, found.spec_changed)
    return found


def cancel(
    job: JobLike, overrides: Iterable[str] = (), *, job_ids: Iterable[str] | None = None
) -> list[str]:
    """Cancel the recorded jobs still pending or running (or only ``job_ids``); their ids."""
    from . import submission as submitting

    return submitting.cancel(_job(job, overrides), job_ids)


def results(job: JobLike, overrides: Iterable[str] = ()) -> Any:
    """Open ``<output>/results.nc`` (loaded into memory, file closed), laid out as the file
    is: along ``space`` (one space dim), ``partition`` (grouped partitions), or the stacked
    space dims of ``data.space`` (``best_score(lat, lon)``: partition ``i`` is cell ``i`` in C
    order; ``ds.stack(cell=["lat", "lon"])`` gives one row per cell).

    Results of another spec (one that differs in keys that decide results): a
    :class:`SpecChangedWarning`, and ``ds.attrs["hpctune_spec_changed"]`` lists the keys
    (the attribute is there only then).
    """
    import xarray as xr

    checked = _job(job, overrides)
    store = Store(checked.output_dir)
    path = store.results_path
    if not path.exists():
        raise UsageError(f"no results yet: {path} does not exist (run the job first)")
    with xr.open_dataset(path) as ds:
        loaded = ds.load()
    changed = store.changed_keys(checked)
    if changed:
        loaded.attrs[SPEC_CHANGED_ATTR] = changed
        _warn_spec_changed(str(store.root), changed)
    return loaded


def location(job: JobLike, overrides: Iterable[str] = (), **coords: float) -> Location:
    """The cell of the training data nearest to ``coords`` (``lat=48.2, lon=16.4``, by the
    data's own coordinate names) and the partition that trained it; a place outside the grid
    is a :class:`UsageError` naming the nearest cell and its distance
    (:func:`hpctune.output.locate.locate`). Reads metadata and coordinates only."""
    return locate(_job(job, overrides), coords)


def load_model(
    job: JobLike, index: int | None = None, trusted: Iterable[str] = (), **coords: float
) -> Any:
    """The best model of partition ``index``, or of the partition that trained the cell
    nearest to ``coords`` (``load_model(job, lat=48.2, lon=16.4)``: :func:`location`), loaded
    safely (:func:`hpctune.search.model_file.load_model`)."""
    from .search.model_file import load_model as load_partition_model

    checked = _job(job)
    if index is None:
        index = locate(checked, coords).partition
    elif coords:
        raise UsageError("load_model: give a partition number or coordinates, not both")
    return load_partition_model(checked, index, trusted)


def report(job: JobLike, overrides: Iterable[str] = (), *, folder: str | Path | None = None) -> Any:
    """Draw the maps and plots of results.nc and write ``<output>/report/index.html``;
    returns a Report (its ``folder``, ``index`` and ``figures``).

    Results of another spec: drawn as that spec's, the page says so, a
    :class:`SpecChangedWarning`, and ``Report.spec_changed`` names the keys.
    """
    from .reporting.page import write_report

    checked = _job(job, overrides)
    written = write_report(checked, folder)
    _warn_spec_changed(str(checked.output_dir), written.spec_changed)
    return written


def predict(
    job: JobLike,
    overrides: Iterable[str] = (),
    *,
    data: str | Path | Iterable[str | Path] | None = None,
    out: str | Path,
    client: Any = None,
    trusted: Iterable[str] = (),
    where: str | dict[str, Any] | None = None,
    proba: bool = False,
) -> Any:
    """Apply each partition's best model to ``data`` (default: the job's own data) and write
    the variable ``prediction`` to ``out`` (NetCDF); returns a PredictSummary. ``trusted``:
    types the model files may ask for beyond those of the job's estimators. ``where``: only
    the cells of a mask variable of ``data`` or of a box (``{"lat": [40, 50]}``), others NaN.
    ``proba``: a classifier's ``probability`` too, on a last dim ``class``."""
    from .predict import predict as predicting

    return predicting(
        _job(job, overrides),
        _paths(data),
        out,
        client=client,
        trusted=tuple(trusted),
        where=where,
        proba=proba,
    )


def prediction(
    job: JobLike,
    overrides: Iterable[str] = (),
    *,
    data: str | Path | Iterable[str | Path] | None = None,
    trusted: Iterable[str] = (),
    where: str | dict[str, Any] | None = None,
    proba: bool = False,
) -> Any:
    """The predictions as a lazy, dask-backed ``xarray.DataArray`` (nothing computed yet);
    ``where`` as :func:`predict`'s; ``proba``: a Dataset of ``prediction`` and a classifier's
    ``probability``."""
    from .predict import prediction as lazy

    return lazy(_job(job, overrides), _paths(data), tuple(trusted), where, proba)


def plan(
    job: JobLike,
    overrides: Iterable[str] = (),
    *,
    sample: int = 20,
    target_walltime: str | int | None = None,
    client: Any = None,
) -> Any:
    """Time ``sample`` partitions and estimate core-hours, walltime and nodes for the whole run;
    returns a PlanEstimate (``text()``, ``to_dict()``, ``lines``: the arithmetic)."""
    from .plan import plan as planning

    target = target_walltime if isinstance(target_walltime, int) else None
    if isinstance(target_walltime, str):
        try:
            target = parse_walltime(target_walltime)
        except ValueError as exc:
            raise UsageError(f"--target-walltime {exc}") from None
    if target is not None and target <= 0:
        raise UsageError(f"--target-walltime must be longer than zero; got {target_walltime!r}")
    return planning(_job(job, overrides), sample, target_walltime=target, client=client)


def init(
    data: str | Path | Iterable[str | Path],
    out: str | Path = "job.yaml",
    *,
    target: str | None = None,
    force: bool = False,
    overrides: Iterable[str] = (),
) -> Any:
    """Write a commented starter spec for ``data`` (a file, a glob, or a list of them) from its
    metadata; returns a ``Starter`` (``path``, ``spec``, ``next``: the command to type next)."""
    from .submission.starter import write_starter

    paths = _paths(data) or []
    return write_starter(paths, out, target=target, force=force, overrides=overrides)


def _warn_spec_changed(output: str, changed: list[str]) -> None:
    if changed:  # stacklevel: the caller of the API function
        warnings.warn(SpecChangedWarning(output, changed), stacklevel=3)


def _paths(data: str | Path | Iterable[str | Path] | None) -> list[str] | None:
    if data is None:
        return None
    if isinstance(data, str | Path):
        return [str(data)]
    return [str(p) for p in data] or None
