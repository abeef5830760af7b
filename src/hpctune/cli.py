"""The ``hpctune`` command: thin Click wrappers over :mod:`hpctune.api`.

Exit codes: 0 success; 1 failure; 2 bad spec, data or usage (one line naming the key);
3 a run that finished with some partitions failed; 128+N stopped by signal N (resumable).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import click

from . import api, startup, streams
from .errors import HpctuneError, HpctuneWarning
from .output.status import StatusCounts
from .progress import Progress
from .schedulers.registry import KINDS

EPILOG_EXIT_CODES = (
    "Exit codes: 0 success, 1 failure, 2 bad spec or usage, 3 some partitions failed, "
    "128+N stopped by signal N."
)


def job_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The JOB argument and ``--set`` overrides, shared by every command."""

    @click.argument("job", type=click.Path(dir_okay=False, path_type=str))
    @click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a spec value (dotted key, YAML value), e.g. --set search.cv.splits=5.",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout.")


def echo(message: Any = None, nl: bool = True) -> None:
    """hpctune's own output: to the real stdout, where nothing an estimator prints goes
    (:mod:`hpctune.streams`), flushed at once (a process may end without flushing). Lines
    for stderr use ``click.echo(..., err=True)``."""
    out = streams.stdout()
    click.echo(message, file=out, nl=nl)
    out.flush()


def emit_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, default=str))


class Command(click.Command):
    """A command whose work begins with Python's ``sys.stdout`` on stderr, as descriptor 1, in
    the command line's own process (its ``--help`` went to stdout before)."""

    def invoke(self, ctx: click.Context) -> Any:
        streams.python_stdout_to_stderr()
        return super().invoke(ctx)


class Group(click.Group):
    command_class = Command


@click.group(
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG_EXIT_CODES,
)
@click.version_option(package_name="hpctune", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (to stderr).")
def cli(verbose: bool) -> None:
    """Train one model per grid cell of NetCDF data, each with its own hyper-parameter search.

    \b
    Example:
      hpctune validate jobs/example.yaml
      hpctune run jobs/example.yaml
    """
    logger = logging.getLogger("hpctune")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("hpctune: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


@cli.command(epilog=EPILOG_EXIT_CODES)
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
    echo(
        f"  partitions: {parts['count']} (by {parts['by']}), "
        f"{parts['train_steps']} training and {parts['test_steps']} test steps"
    )
    folds = search["folds"] if search["folds"] is not None else "?"
    fits = search["fits"] if search["fits"] is not None else "?"
    echo(
        f"  search:     {search['method']}, {search['candidates']} candidates x {folds} folds "
        f"+ refit = {fits} fits in all"
    )
    echo(f"  output:     {report['output']}")


@cli.command(epilog=EPILOG_EXIT_CODES)
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


@cli.command(epilog=EPILOG_EXIT_CODES)
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


template_dir_option = click.option(
    "--template-dir",
    "template_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=str),
    help="Look for job-script templates here first (before HPCTUNE_TEMPLATE_DIR, "
    "~/.config/hpctune/templates and the shipped ones). Repeatable.",
)


@cli.command(epilog=EPILOG_EXIT_CODES)
@job_options
@click.option(
    "--scheduler",
    type=click.Choice(KINDS),
    help="Render for this scheduler instead of scheduler.kind.",
)
@click.option(
    "-o",
    "--output",
    "output_file",
    type=click.Path(dir_okay=False, path_type=str),
    help="Write the script to FILE instead of printing it.",
)
@click.option(
    "--relative-to",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=str),
    help="Write paths relative to DIR, the folder the script will be submitted from "
    "(the same script on every machine); default: absolute paths.",
)
@template_dir_option
def render(
    job: str,
    overrides: tuple[str, ...],
    scheduler: str | None,
    output_file: str | None,
    relative_to: str | None,
    template_dirs: tuple[str, ...],
) -> None:
    """Print the job script that `hpctune submit` would submit.

    \b
    Example:
      hpctune render jobs/slurm.yaml
      hpctune render jobs/pbs.yaml --relative-to . -o sbatch/pbs.sh
    """
    script = api.render(
        job,
        overrides,
        scheduler=scheduler,
        template_dir=list(template_dirs),
        relative_to=relative_to,
    )
    if output_file is None:
        echo(script, nl=False)
        return
    try:
        with open(output_file, "w", encoding="utf-8") as handle:
            handle.write(script)
        os.chmod(output_file, 0o755)
    except OSError as exc:
        raise HpctuneError(f"cannot write {output_file}: {exc.strerror or exc}") from None


@cli.command(epilog=EPILOG_EXIT_CODES)
@job_options
@click.option(
    "--array",
    type=click.IntRange(min=1),
    metavar="N",
    help="Spread the partitions over N array tasks, plus a merge job that writes results.nc.",
)
@click.option(
    "--after",
    metavar="JOBID",
    help="Start after this job ends well (or TYPE:JOBID, TYPE one of after, afterany, "
    "afterok, afternotok).",
)
@click.option("--dry-run", is_flag=True, help="Print the script(s) and the submit command only.")
@template_dir_option
@json_option
def submit(
    job: str,
    overrides: tuple[str, ...],
    array: int | None,
    after: str | None,
    dry_run: bool,
    template_dirs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Submit the job to its batch system (scheduler.kind); print the job id.

    The ids are recorded in <output>/jobs.json for `status` and `cancel`. With --array the
    printed id is the merge job's, which ends once results.nc is written.

    \b
    Example:
      hpctune submit jobs/slurm.yaml
      hpctune submit jobs/slurm.yaml --array 20 --json
      hpctune submit jobs/slurm.yaml --dry-run
    """
    from .submission import dry_run_text

    result = api.submit(
        job,
        overrides,
        array=array,
        after=after,
        dry_run=dry_run,
        template_dir=list(template_dirs),
    )
    if as_json:
        emit_json(result.to_dict())
        return
    if dry_run:
        echo(dry_run_text(result), nl=False)
        return
    for note in result.notes:
        click.echo(f"hpctune: {note}", err=True)
    for record in result.jobs:
        part = record.get("array")
        what = record["role"]
        if part:
            last = part["offset"] + part["size"] - 1
            what += f" (slices {part['offset']}-{last} of {part['slices']})"
        click.echo(f"hpctune: submitted {what}: job {record['job_id']}", err=True)
    echo(result.job_id)


@cli.command(epilog=EPILOG_EXIT_CODES)
@job_options
@json_option
def status(job: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Show the submitted jobs' states and how many partitions are done.

    States come from the batch system's own commands (on SLURM: sacct where accounting
    answers, else squeue and scontrol). Partitions: ok, skipped, failed, pending.

    \b
    Example:
      hpctune status jobs/slurm.yaml --json
    """
    report = api.status(job, overrides)
    if as_json:
        emit_json(report.to_dict())
        return
    parts = report.partitions
    total = parts["total"] if parts["total"] is not None else "?"
    pending = parts["pending"] if parts["pending"] is not None else "?"
    echo(
        f"{report.name}: {total} partitions: {parts['ok']} ok, {parts['skipped']} skipped, "
        f"{parts['failed']} failed, {pending} pending"
    )
    if not report.jobs:
        echo("  no jobs submitted yet (hpctune submit)")
    for entry in report.jobs:
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
        echo(line)


@cli.command(epilog=EPILOG_EXIT_CODES)
@job_options
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def cancel(job: str, overrides: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Cancel the submitted jobs that are still pending or running (scancel, qdel ...).

    Finished partitions stay on disk: submit again to resume.

    \b
    Example:
      hpctune cancel jobs/slurm.yaml --yes
    """
    active = [str(entry["job_id"]) for entry in api.status(job, overrides).active]
    if not active:
        if as_json:
            emit_json({"cancelled": []})
        else:
            echo("nothing to cancel: no recorded job is pending or running")
        return
    if not yes:
        click.confirm(f"Cancel job(s) {', '.join(active)}?", abort=True, err=True)
    cancelled = api.cancel(job, overrides, job_ids=active)
    if as_json:
        emit_json({"cancelled": cancelled})
    else:
        echo(f"cancelled: {' '.join(cancelled)}" if cancelled else "nothing to cancel")


@cli.command(epilog=EPILOG_EXIT_CODES)
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


@cli.command(epilog=EPILOG_EXIT_CODES)
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
@json_option
def predict(
    job: str, overrides: tuple[str, ...], data: tuple[str, ...], out: str, as_json: bool
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
    summary = api.predict(job, overrides, data=list(data) or None, out=out)
    if as_json:
        emit_json(summary.to_dict())
    else:
        echo(summary.line())


@cli.command(epilog=EPILOG_EXIT_CODES)
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


@contextlib.contextmanager
def warning_lines() -> Iterator[None]:
    """hpctune's warnings (:class:`HpctuneWarning`) as one ``hpctune: warning: ...`` line on
    stderr each, every time; other warnings as Python shows them."""
    shown = warnings.showwarning

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, HpctuneWarning):
            click.echo(f"hpctune: warning: {message}", err=True)
        else:
            shown(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", HpctuneWarning)
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line and an exit code for every error, never a traceback."""
    own_process = argv is None  # the console script: the process ends with the command
    if own_process:
        startup.command_line_process()
        streams.claim_stdout()  # what estimators print goes to stderr, never into stdout
    code = _command(argv)
    streams.flush()
    if own_process:
        startup.end(code)
    sys.exit(code)


def _command(argv: list[str] | None) -> int:
    """Run the command line ``argv``; its exit code."""
    try:
        try:
            with warning_lines():
                code = cli.main(args=argv, prog_name="hpctune", standalone_mode=False)
        except click.exceptions.Abort as exc:
            if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
                raise (exc.__cause__ or exc.__context__) from None  # Click's wrap of Ctrl-C
            click.echo("hpctune: aborted", err=True)
            return 1
    except SystemExit as exc:  # a command's own exit code
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        click.echo(exc.code, err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except HpctuneError as exc:
        click.echo(f"hpctune: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        if signum == signal.SIGINT:
            click.echo("hpctune: interrupted", err=True)
        else:
            click.echo(f"hpctune: stopped by {signal.Signals(signum).name}", err=True)
        return 128 + int(signum)
    except Exception as exc:  # a bug: say so in one line, the traceback on request
        if os.environ.get("HPCTUNE_DEBUG"):
            raise
        click.echo(
            f"hpctune: internal error: {type(exc).__name__}: {exc} "
            "(set HPCTUNE_DEBUG=1 for the traceback)",
            err=True,
        )
        return 1
    return code or 0
