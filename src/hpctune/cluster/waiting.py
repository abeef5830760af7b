"""Waiting for workers to connect, and the stop signals heard meanwhile."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..errors import ClusterError
from ..startup import StopEvent

log = logging.getLogger("hpctune")


def wait_for_workers(
    client: Any,
    expected: int,
    timeout: float,
    *,
    processes: Any = None,
    minimum: int | None = None,
    what: str = "workers",
    hint: str = "",
    stopping: threading.Event | None = None,
) -> int:
    """Wait until ``expected`` workers are connected, at most ``timeout`` seconds.

    Returns the number connected. After the timeout the run goes on with the workers there are
    if at least ``minimum`` (default 1) came, with a warning; with fewer, or when every launcher
    process has exited, it stops with a :class:`ClusterError` that says what happened. When
    ``stopping`` is set (Ctrl-C, SIGTERM) it returns at once: the run then stops in order.
    """
    minimum = 1 if minimum is None else minimum
    deadline = time.monotonic() + timeout
    connected = 0
    while True:
        connected = len(client.nthreads())
        if connected >= expected:
            return connected
        if stopping is not None and stopping.is_set():
            log.warning(
                "stopped while waiting for %s (%d of %d connected)", what, connected, expected
            )
            return connected
        if processes is not None and processes.all_exited():
            codes = ", ".join(str(code) for _, code in processes.exited())
            raise ClusterError(
                f"the {what} exited (exit code {codes}) with {connected} of {expected} "
                f"workers connected; last lines of {processes.log_path}:\n{processes.tail()}"
            )
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if connected >= minimum:
        log.warning(
            "only %d of %d %s connected within cluster.start_timeout=%g s; going on with them",
            connected,
            expected,
            what,
            timeout,
        )
        return connected
    detail = ""
    if processes is not None:
        detail = f"; last lines of {processes.log_path}:\n{processes.tail()}"
    raise ClusterError(
        f"{connected} of {expected} {what} connected within cluster.start_timeout={timeout:g} s"
        f"{hint}{detail}"
    )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


@contextlib.contextmanager
def watch_stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT, SIGTERM or SIGUSR1 while the cluster starts.

    Each signal is passed on to the handler already in place (the run's own, which records
    that the run must stop), so that waiting for workers ends at once and the run then stops in
    order instead of after ``cluster.start_timeout``. Signals arriving together are safe
    (:class:`hpctune.startup.StopEvent`).
    """
    event = StopEvent()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, frame: Any) -> None:
        old = previous.get(signum)
        if old == signal.SIG_IGN:
            return
        event.set_from_handler()
        if callable(old):
            old(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield event
    finally:
        for sig, old in previous.items():
            if old is not None:
                signal.signal(sig, old)
