"""hpctune's standard output is its own: what estimators print goes to stderr.

Estimators print: libsvm's ``verbose`` from C straight to file descriptor 1, LightGBM its
``[LightGBM] [Info]`` lines, a user's estimator with ``print``, and they do so in worker threads
of the command's own process as much as in worker processes. So that ``hpctune run --json``
writes one JSON document and nothing else, the command line's own process
(:func:`claim_stdout`, called first thing by :func:`hpctune.cli.main`) keeps the real standard
output on a private descriptor of its own, which hpctune's output (a command's lines, its JSON)
is written to (:func:`stdout`), and points descriptor 1 at stderr. Every process the command
starts (worker processes, forked or spawned, the forkserver, the ``srun``/``pbsdsh`` launchers)
inherits descriptor 1 as stderr; worker processes started by others (``python -m
hpctune.worker``: launchers, dask-jobqueue's jobs) point their own at stderr
(:func:`estimators_to_stderr`). Python's ``sys.stdout`` follows descriptor 1 once a command
runs (:func:`python_stdout_to_stderr`); until then (``--help``, ``--version``) it is hpctune's.

A caller of :mod:`hpctune.api` keeps its descriptors and its ``sys.stdout``: nothing here runs
in its process unless it calls it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import TextIO

_own: TextIO | None = None
"""The real standard output, once :func:`claim_stdout` has kept it apart."""
_diverted: TextIO | None = None
"""``sys.stdout`` once it follows descriptor 1 to stderr."""


def claim_stdout() -> None:
    """In the command line's own process: keep the real standard output for hpctune's own
    output (:func:`stdout`, and ``sys.stdout`` until :func:`python_stdout_to_stderr`), and
    send what anything else writes to descriptor 1 to stderr. Safe to call again."""
    global _own
    if _own is not None:
        return
    try:
        private = os.dup(1)  # not inherited by the processes this one starts
    except OSError:  # no standard output at all: nothing to keep apart
        return
    original = sys.stdout
    if original is not None:
        with contextlib.suppress(Exception):
            original.flush()  # what was written before goes where it was meant to
    _own = open(  # noqa: SIM115 - lives as long as the process, flushed by flush()
        private,
        "w",
        buffering=1 if getattr(original, "line_buffering", False) else -1,
        encoding=getattr(original, "encoding", None) or "utf-8",
        errors=getattr(original, "errors", None) or "strict",
    )
    _descriptor_1_to_stderr()
    sys.stdout = _own
    atexit.register(flush)


def stdout() -> TextIO:
    """Where hpctune's own output goes: the real standard output, kept apart by
    :func:`claim_stdout`, else ``sys.stdout`` (a caller's, or a test's capture)."""
    return _own if _own is not None else sys.stdout


def python_stdout_to_stderr() -> None:
    """Python's ``sys.stdout`` follows descriptor 1 to stderr, where :func:`claim_stdout`
    pointed it; nothing in a process that did not claim its standard output."""
    if _own is not None:
        _follow_descriptor_1()


def estimators_to_stderr() -> None:
    """In a worker process hpctune starts for itself: descriptor 1 and ``sys.stdout`` go to
    stderr (the worker has nothing of its own to write to its standard output)."""
    if _diverted is None:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        _descriptor_1_to_stderr()
    _follow_descriptor_1()


def _follow_descriptor_1() -> None:
    global _diverted
    if _diverted is None:
        _diverted = open(  # noqa: SIM115 - lives as long as the process
            1,
            "w",
            buffering=1,  # line by line, as stderr: the lines of both stay in order
            encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
            errors="backslashreplace",
            closefd=False,
        )
    if sys.stdout is not _diverted:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.stdout = _diverted


def _descriptor_1_to_stderr() -> None:
    try:
        os.dup2(2, 1)
    except OSError:  # no stderr either: what estimators print is dropped
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)


def flush() -> None:
    """Flush hpctune's own output, Python's standard streams and C's (libraries' ``printf``
    writes to descriptor 1, that is stderr, once claimed): before the process ends, however it
    ends (``os._exit`` flushes nothing)."""
    for stream in (_own, sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()
    if _own is not None or _diverted is not None:
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None).fflush(None)
