"""The command line's start-up and exit: Python's cyclic garbage collector keeps out of both.

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
"""

from __future__ import annotations

import atexit
import gc

_own_process = False
_paused = False


def command_line_process() -> None:
    """The process is the command line's own (not a caller's, through the API or tests): freeze
    the heap when it exits, and let :func:`pause_collector` act."""
    global _own_process
    if not _own_process:
        _own_process = True
        atexit.register(gc.freeze)


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
