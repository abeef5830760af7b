"""The commands that compute, each a thin shell over :mod:`hpctune.api`: parse the options, call
the API, print its result as text (or ``--json``) and exit with the run's code."""

from __future__ import annotations

import sys

import click

from .. import api, startup
from ..output.status import StatusCounts
from ..progress import Progress
from .options import EPILOG_EXIT_CODES, Command, echo, emit_json, job_options, json_option


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
@job_options
@json_option
def validate(job: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Check the spec and the data's metadata; compute nothing, write nothing.

    \b
    Example:
      hpctune validate jobs/example.yaml --set search.cv.splits=5
    """
    report = api.validate(job, overrides)
    if as_json:
        emit_json({"valid": True, **report})
        return
    data, parts, search = report["data"], report["partitions"], report["search"]
    space = " x ".join(f"{k}={v}" for k, v in data["space"].items())
    echo(f"{report['name']}: valid")
    echo(
        f"  data:       {data['files']} file(s), {space}, {data['time']['steps']} time steps "
        f"({data['time']['first']} .. {data['time']['last']})"
    )
    outside = f", {parts['outside_where']} outside data.where" if parts["outside_where"] else ""
    echo(
        f"  partitions: {parts['count']} (by {parts['by']}){outside}, "
        f"{parts['train_steps']} training and {parts['test_steps']} test steps"
    )
    folds = search["folds"] if search["folds"] is not None else "?"
    fits = search["fits"] if search["fits"] is not None else "?"
    halving = search.get("halving")
    if halving is not None and halving["iterations"] is not None:
        echo(
            f"  search:     {search['method']}, {search['candidates']} candidates: "
            f"{halving['text']} + refit = about {fits} fits in all, "
            f"{halving['full_size_fits']} per partition in full-size fits (an estimate for "
            f"{halving['rows']} training rows a partition)"
        )
    else:
        echo(
            f"  search:     {search['method']}, {search['candidates']} candidates x {folds} "
            f"folds + refit = {fits} fits in all"
        )
    if "targets" in report:
        echo(f"  targets:    {report['targets']['line']}")
    echo(f"  output:     {report['output']}")


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
@job_options
@json_option
@click.option(
    "--restart", is_flag=True, help="Discard earlier results of this output and start over."
)
@click.option("--slice", "part", metavar="I/N", help="Compute only block I of N of the partitions.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def run(
    job: str,
    overrides: tuple[str, ...],
    as_json: bool,
    restart: bool,
    part: str | None,
    quiet: bool,
) -> None:
    """Run the searches (or resume them) and write <output>/results.nc.

    Without a scheduler this starts a local Dask cluster with one worker per core (on a login
    node in cluster mode auto: on 2 cores, with a warning). A --slice writes its partitions,
    not results.nc: hpctune merge writes it once every slice has run.
    Finished partitions are kept: run the same command again to resume.

    \b
    Example:
      hpctune run jobs/example.yaml
      hpctune run jobs/example.yaml --slice 0/4 --json
    """
    startup.pause_collector()  # until the searches begin (execute.run_prepared)
    progress = Progress(enabled=not (as_json or quiet))
    summary = api.run(job, overrides, restart=restart, slice=part, progress=progress)
    progress.summary(summary)
    if as_json:
        emit_json(summary.to_dict())
    else:
        echo(summary.line())
    sys.exit(summary.exit_code)


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
@job_options
@json_option
def merge(job: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Write results.nc from the partitions finished so far (after the tasks of an array).

    \b
    Example:
      hpctune merge jobs/example.yaml
    """
    ds = api.merge(job, overrides)
    counts = StatusCounts.from_results(ds)
    if as_json:
        emit_json({"output": str(api.load_spec(job, overrides).output), **counts.by_status()})
    else:
        echo(counts.text())
    sys.exit(3 if counts.failed or counts.pending else 0)


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
@job_options
@click.option(
    "-o",
    "--output",
    "folder",
    type=click.Path(file_okay=False, path_type=str),
    help="Write the report here instead of <output>/report.",
)
@json_option
def report(job: str, overrides: tuple[str, ...], folder: str | None, as_json: bool) -> None:
    """Maps, plots and an HTML page of the results: <output>/report/.

    Maps of the best score, of each test metric and of the chosen parameters over the cells'
    coordinates; the distribution of the chosen values; score against training rows; the
    search times; the run's spec, versions, job ids and times.

    \b
    Example:
      hpctune report jobs/example.yaml
      xdg-open results/ascat-sig-svr/report/index.html
    """
    written = api.report(job, overrides, folder=folder)
    if as_json:
        emit_json(written.to_dict())
    else:
        echo(f"{len(written.figures)} figures -> {written.index}")


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
@job_options
@click.option(
    "--data",
    "data",
    multiple=True,
    metavar="PATH",
    help="New data of the same layout: a file or a glob (repeatable). Default: the job's data.",
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="The NetCDF file to write (variable 'prediction').",
)
@click.option(
    "--trust",
    "trusted",
    multiple=True,
    metavar="TYPE",
    help="A type (module.Class) the model files may ask for beyond the job's estimators and "
    "their libraries' reviewed types (repeatable); read what it does when rebuilt first.",
)
@json_option
def predict(
    job: str,
    overrides: tuple[str, ...],
    data: tuple[str, ...],
    out: str,
    trusted: tuple[str, ...],
    as_json: bool,
) -> None:
    """Apply the best models to new data; write the predictions.

    Each partition's best model predicts its cells. The new data needs the spec's inputs
    with the same space dims (the same cells; the time axis may differ). Blocks of cells are
    predicted in parallel on the job's cluster and written as they finish. 'prediction' has
    the input's dims and coordinates; it is NaN where an input is missing and on cells whose
    partition is not ok.

    \b
    Example:
      hpctune predict jobs/example.yaml --data data/ascat_isba_5cells.nc -o predictions.nc
    """
    summary = api.predict(job, overrides, data=list(data) or None, out=out, trusted=trusted)
    if as_json:
        emit_json(summary.to_dict())
    else:
        echo(summary.line())


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
@job_options
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    metavar="K",
    help="Partitions to time (drawn with search.seed).",
)
@click.option(
    "--target-walltime",
    metavar="HH:MM:SS",
    help="Nodes needed to finish within this walltime (default: scheduler.walltime).",
)
@json_option
def plan(
    job: str,
    overrides: tuple[str, ...],
    sample: int,
    target_walltime: str | None,
    as_json: bool,
) -> None:
    """Estimate core-hours, walltime and nodes from a timed sample.

    A sample of partitions runs as a run computes (worker processes of the job's cluster
    mode, one BLAS thread per worker) but writes nothing. The estimate uses scheduler.nodes
    x scheduler.cores_per_node and cluster.workers/threads, and shows its arithmetic.

    \b
    Example:
      hpctune plan jobs/example.yaml --sample 3
      hpctune plan jobs/slurm.yaml --sample 50 --target-walltime 04:00:00 --json
    """
    estimate = api.plan(job, overrides, sample=sample, target_walltime=target_walltime)
    if as_json:
        emit_json(estimate.to_dict())
    else:
        echo(estimate.text())
