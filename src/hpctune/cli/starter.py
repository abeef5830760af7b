"""``hpctune init``: a commented starter spec written from a data file's metadata."""

from __future__ import annotations

import click

from .. import api
from .options import EPILOG_EXIT_CODES, Command, echo, emit_json, json_option


@click.command(cls=Command, epilog=EPILOG_EXIT_CODES)
@click.argument("data", nargs=-1, required=True, metavar="DATA...")
@click.option(
    "-o",
    "--output",
    "out",
    default="job.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="The spec file to write.",
)
@click.option(
    "--target",
    metavar="NAME",
    help="The variable to predict (it leaves the inputs). Without it, choose it in the file.",
)
@click.option("--force", is_flag=True, help="Overwrite the spec file if it exists.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a spec value in the file written (dotted key, YAML value), e.g. "
    "--set cluster.mode=auto.",
)
@json_option
def init(
    data: tuple[str, ...],
    out: str,
    target: str | None,
    force: bool,
    overrides: tuple[str, ...],
    as_json: bool,
) -> None:
    """Write a commented starter spec from the data's metadata (no values are read).

    DATA is a NetCDF file, a glob or several files (one per year), opened as a run opens them.
    The spec names the space dims found (several, such as lat and lon, stacked into cells), the
    time dim, the numeric variables along them as inputs, the target (--target, or to choose
    from the candidates its comment lists), the last ~20% of the time steps as the test period,
    the search of jobs/example.yaml (a scaled SVR, 6 candidates, 3 folds) and a local cluster.
    An existing file is kept unless --force.

    \b
    Example:
      hpctune init data/ascat_isba_5cells.nc --target sig -o job.yaml
      hpctune validate job.yaml && hpctune run job.yaml
    """
    starter = api.init(list(data), out, target=target, force=force, overrides=overrides)
    if as_json:
        emit_json(starter.to_dict())
        return
    for line in starter.lines():
        echo(line)
