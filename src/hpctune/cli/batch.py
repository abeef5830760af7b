"""The commands that go through a batch system: render a job script, submit it, follow the
jobs and cancel them; thin shells over :mod:`hpctune.api` like the others."""

from __future__ import annotations

import os

import click

from .. import api
from ..errors import HpctuneError
from ..schedulers.registry import KINDS
from .options import (
    EPILOG_EXIT_CODES,
    Command,
    echo,
    emit_json,
    job_options,
    json_option,
    template_dir_option,
)


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
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


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
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
    from ..submission import dry_run_text

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
    for line in result.lines():
        click.echo(f"hpctune: {line}", err=True)
    echo(result.job_id)


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
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
    for line in report.lines():
        echo(line)


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
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
