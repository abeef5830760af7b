"""The one place scheduler commands run.

Every ``sbatch``, ``squeue``, ``qsub`` ... goes through :func:`run_command`. A failure becomes a
:class:`~hpctune.errors.SchedulerError` that shows the command, its exit code and its output.

A submit command is a list of words as a shell would read them; a scheduler that reads the job
script on its standard input (``bsub < job.sh``) ends it with ``"<", SCRIPT``
(:func:`split_stdin`, :func:`command_text`).
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import SchedulerError

log = logging.getLogger("hpctune")

COMMAND_TIMEOUT = 60.0
"""Seconds a scheduler command may take (a busy controller can be slow, not minutes slow)."""

STDIN = "<"
"""The word before a file a command reads on its standard input."""


def split_stdin(words: Sequence[str]) -> tuple[list[str], str | None]:
    """``[..., "<", FILE]`` -> (the program's arguments, FILE); other commands -> (words, None)."""
    words = [str(word) for word in words]
    if len(words) >= 3 and words[-2] == STDIN:
        return words[:-2], words[-1]
    return words, None


def command_text(words: Sequence[str]) -> str:
    """The command as a shell line: quoted words, and ``< FILE`` for a script read on stdin."""
    argv, stdin = split_stdin(words)
    text = shlex.join(argv)
    return text if stdin is None else f"{text} {STDIN} {shlex.quote(stdin)}"


def run_command(
    command: Sequence[str],
    *,
    cwd: str | Path | None = None,
    timeout: float = COMMAND_TIMEOUT,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a scheduler command (no shell) and capture its output.

    A command ending in ``"<", FILE`` gets FILE (relative to ``cwd``) on its standard input,
    others none. With ``check`` a missing program, an unreadable FILE, a timeout or a non-zero
    exit raises SchedulerError.
    """
    command, stdin = split_stdin(command)
    shown = [*command, STDIN, stdin] if stdin else command
    log.info("running: %s", command_text(shown))
    try:
        handle = open(Path(cwd or ".") / stdin, "rb") if stdin else None  # noqa: SIM115
    except OSError as exc:
        raise SchedulerError(shown, None, stderr=f"cannot read {stdin}: {exc.strerror}") from None
    try:
        proc = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL if handle is None else handle,
            check=False,
        )
    except FileNotFoundError:
        raise SchedulerError(
            shown, None, stderr=f"{command[0]} not found on PATH (is this a login node?)"
        ) from None
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        raise SchedulerError(
            shown, None, stdout=out, stderr=f"no answer within {timeout:.0f} s"
        ) from None
    finally:
        if handle is not None:
            handle.close()
    if check and proc.returncode != 0:
        raise SchedulerError(shown, proc.returncode, proc.stdout, proc.stderr)
    return proc


def bad_output(command: Sequence[str], stdout: str, what: str) -> SchedulerError:
    """The error for a command that succeeded but printed something other than ``what``
    (a site's wrapper, a changed version): the output is shown, not guessed at."""
    return SchedulerError(list(command), 0, stdout=f"expected {what}; got {stdout.strip()!r}")
