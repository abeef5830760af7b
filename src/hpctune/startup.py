"""The command line's start-up and exit: Python's cyclic garbage collector keeps out of both,
a stop signal ends a command with 128+N whatever it is doing, and the exit never tears down a
native library under a thread still running in it.

Importing scientific Python (xarray, scikit-learn, dask-ml) creates millions of objects that live
as long as the process, and each time the heap grows by a quarter the collector walks all of
them: five full collections, 0.44 s, before the first fit of a one-cell ``hpctune run``
(measured; benchmarks/RESULTS.md). The ``run`` command turns the collector off while it starts
(:func:`pause_collector`); when the work begins (:func:`work_begins`) the start-up's objects are
frozen, never walked again, and the collector runs as usual on what the work allocates. The
cyclic garbage of start-up (those five collections found 190 objects in all) stays until exit.

At exit the heap is frozen as well, so that the interpreter's shutdown does not walk it once
more looking for cycles (0.6 s after a run); the process's memory goes with it. Both only in
the command line's own process (:func:`command_line_process`), never in a caller's.

SIGINT, SIGTERM and SIGUSR1 (a batch system's warning before the walltime) raise
:class:`Interrupted` in the command line's process until a run installs its own handlers (which
stop the run in order, :func:`hpctune.execution.driver.run_prepared`) and after it restores
them: the command ends with exit code 128+N and one line, whatever it was doing, never with a
traceback nor killed by the signal. (Before the command begins, while Python starts and imports
hpctune, a signal acts as on any Python program; once the exit code is decided, :func:`end`
ignores them.) A disposition inherited as ignored is replaced too (a shell starts background
commands with SIGINT ignored, and the job scripts pass INT on to ``hpctune run`` running in the
background), as the run's own handlers always did.

A stop signal is recorded in a :class:`StopEvent`, which a handler sets with
:meth:`StopEvent.set_from_handler`: a handler runs in the main thread between two bytecodes,
possibly in the middle of ``threading.Event.set`` called by the same handler for the signal
before (``scancel --signal=INT --full`` signals hpctune and the job script, which passes the
signal on: two SIGINT within microseconds), and ``Event.set`` there would wait for ever on the
lock its own thread holds.

How the process ends: :func:`end`.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, NoReturn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)

_own_process = False
_paused = False


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived in the command line's process outside a run's own handling: the
    command ends with exit code 128 + :attr:`signum` (a ``KeyboardInterrupt``, so that code
    that cleans up after Ctrl-C cleans up after SIGTERM as well)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class StopEvent(threading.Event):
    """A :class:`threading.Event` that signal handlers set: :meth:`set_from_handler` never
    waits on the event's lock held by the main thread itself.

    ``Event.set`` takes a non-reentrant lock. A second signal whose handler runs while the
    first handler is inside ``set`` (holding that lock) would block the main thread on it for
    ever: the run, stopped, never ends (seen as a job left RUNNING after ``scancel
    --signal=INT --full``). A handler arriving there returns at once instead: the outer
    handler, which resumes right after it, completes the ``set``. Any other thread may
    ``wait`` on the event as usual."""

    def __init__(self) -> None:
        super().__init__()
        self._in_handler = False

    def set_from_handler(self) -> None:
        if self._in_handler:  # a handler below this one, in this thread, is inside set()
            return
        self._in_handler = True
        try:
            self.set()
        finally:
            self._in_handler = False


_stop_signal: int | None = None
_raised_at: float | None = None

REPEAT_SECONDS = 1.0
"""A stop signal this soon after the one last raised is the same stop delivered twice, not
raised again."""


def _interrupt(signum: int, _frame: Any) -> None:
    """Raise :class:`Interrupted`, once per stop.

    A batch system signals every process of the job: ``scancel`` reaches hpctune and the job
    script, which passes the signal on, so two arrive within milliseconds. Raised again, the
    second would interrupt what the first set going: the cleanup of a ``with`` block, or the
    line that reports the stop (seen: ``hpctune: stopped by SIGTERM`` cut off by a traceback,
    exit 1). A repeat within :data:`REPEAT_SECONDS` is that duplicate and does nothing; one
    later (a second Ctrl-C because the first seems lost) raises again. Should the first
    ``Interrupted`` be swallowed (Python only prints "Exception ignored" for one raised in a
    weakref callback during an import), the run still stops: its own handlers begin stopped
    when :func:`stop_signal` is set (:func:`hpctune.execution.driver.run_prepared`).
    """
    global _stop_signal, _raised_at
    now = time.monotonic()
    if _raised_at is not None and now - _raised_at < REPEAT_SECONDS:
        return
    if _stop_signal is None:
        _stop_signal = int(signum)
    _raised_at = now
    raise Interrupted(signum)


def stop_signal() -> int | None:
    """The stop signal that reached the command line's process outside a run's own handling,
    if one did. Code the :class:`Interrupted` interrupted may turn it into another exception
    (an extension module being imported reports ``ImportError: initialization failed``): the
    command still ends as stopped by it, 128+N, never as an internal error."""
    return _stop_signal


def command_line_process() -> None:
    """The process is the command line's own (not a caller's, through the API or tests): stop
    signals raise :class:`Interrupted`, the heap is frozen when it exits, and
    :func:`pause_collector` acts."""
    global _own_process
    if not _own_process:
        _own_process = True
        atexit.register(gc.freeze)
        sys.unraisablehook = _unraisable
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, _interrupt)


def _unraisable(unraisable: Any) -> None:
    """A stop's :class:`Interrupted` raised where Python cannot raise (a weakref callback of
    the import system, an object's ``__del__``) is recorded already (:func:`stop_signal`,
    which the run honours): nothing to print. Anything else as Python reports it."""
    if isinstance(unraisable.exc_value, Interrupted):
        return
    sys.__unraisablehook__(unraisable)


def pause_collector() -> None:
    """Turn the cyclic collector off until :func:`work_begins`, in the command line's own
    process only."""
    global _paused
    if _own_process and gc.isenabled():
        gc.disable()
        _paused = True


def work_begins() -> None:
    """Freeze what start-up created and turn the collector on again, if it was paused here."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def exit_decided() -> None:
    """The command's exit code is decided (a stop is being reported, or the command has
    ended): in the command line's own process, later stop signals are ignored, so that none
    cuts off the report or the exit."""
    if _own_process and threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def end(code: int) -> NoReturn:
    """End the command line's own process with exit code ``code``.

    When this is the process's last thread, the interpreter exits as usual. When other threads
    are left, it ends with :func:`os._exit` once the atexit handlers have run (logging's flush
    among them) and stdout and stderr are flushed. Such a thread is a worker thread of a run
    stopped by a signal, still inside a fit (libsvm, BLAS), or a search still waiting for one: a
    run does not wait for the fits running when it stops, and a thread cannot be stopped from
    outside. The interpreter's exit would end in the C library's ``exit()``, whose ``_dl_fini``
    runs every shared library's finalisers; OpenBLAS, libsvm and HDF5 torn down under a thread
    still running in them crash the process (SIGSEGV, exit 139, after the run's clean summary).
    Waiting for those threads instead would hold a Ctrl-C for as long as the slowest fit, and
    would still crash where a scheduler's kill grace is shorter. ``os._exit`` ends every thread
    at once and runs no finaliser, so the process ends with ``code``; what the interpreter's
    teardown would have done is not needed here: everything hpctune writes is closed by then
    (partition files are renamed into place whole, the journal is closed and no thread appends
    to it once the run stopped, results.nc is closed, the locks released; no thread reads NetCDF
    after the run's end, :class:`hpctune.execution.graphs.SearchGraphRunner`), and the process's
    memory and file descriptors go with it.
    """
    exit_decided()
    if not any(t is not threading.current_thread() for t in threading.enumerate()):
        sys.exit(code)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is not None:
        run_exit_handlers()  # every handler, then none left
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # closed, or none
            stream.flush()
    os._exit(code)
