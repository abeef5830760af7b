"""The ``hpctune`` group and its entry point: every error becomes one line and an exit code.

Exit codes: 0 success; 1 failure; 2 bad spec, data or usage (one line naming the key);
3 a run that finished with some partitions failed; 128+N stopped by signal N (resumable).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import click

from .. import startup, streams
from ..errors import HpctuneError, HpctuneWarning
from .batch import cancel, render, status, submit
from .commands import merge, plan, predict, report, run, validate
from .options import EPILOG_EXIT_CODES, Command
from .starter import init


class Group(click.Group):
    """hpctune's group: its commands are :class:`Command` (Python's stdout on stderr)."""

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


for command in (init, validate, run, merge, render, submit, status, cancel, report, predict, plan):
    cli.add_command(command)


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
    except KeyboardInterrupt as exc:
        return _stopped(getattr(exc, "signum", signal.SIGINT))
    except HpctuneError as exc:
        if (stopped := startup.stop_signal()) is not None:  # the error is the stop's doing
            return _stopped(stopped)
        click.echo(f"hpctune: error: {exc}", err=True)
        return exc.exit_code
    except Exception as exc:  # a bug: say so in one line, the traceback on request
        if (stopped := startup.stop_signal()) is not None:  # the stop, in another exception
            return _stopped(stopped)
        if os.environ.get("HPCTUNE_DEBUG"):
            raise
        click.echo(
            f"hpctune: internal error: {type(exc).__name__}: {exc} "
            "(set HPCTUNE_DEBUG=1 for the traceback)",
            err=True,
        )
        return 1
    return code or 0


def _stopped(signum: int) -> int:
    """Say that a stop signal ended the command; its exit code, 128 + the signal's number.
    Further stop signals are ignored from here on: none cuts this line off."""
    startup.exit_decided()
    if signum == signal.SIGINT:
        click.echo("hpctune: interrupted", err=True)
    else:
        click.echo(f"hpctune: stopped by {signal.Signals(signum).name}", err=True)
    return 128 + int(signum)
