"""What the commands share: the JOB argument and ``--set``, ``--json``, ``--template-dir``, the
exit codes' epilog, and the one way a command prints to stdout (:func:`echo`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click

from .. import streams

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
    """A command's ``--json`` document: indented, values JSON cannot hold as their text."""
    echo(json.dumps(data, indent=2, default=str))


class Command(click.Command):
    """A command whose work begins with Python's ``sys.stdout`` on stderr, as descriptor 1, in
    the command line's own process (its ``--help`` went to stdout before)."""

    def invoke(self, ctx: click.Context) -> Any:
        streams.python_stdout_to_stderr()
        return super().invoke(ctx)


template_dir_option = click.option(
    "--template-dir",
    "template_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=str),
    help="Look for job-script templates here first (before HPCTUNE_TEMPLATE_DIR, "
    "~/.config/hpctune/templates and the shipped ones). Repeatable.",
)
