"""Estimators for tests that misbehave on purpose or count their fits, and tasks for tests of
the cluster (importable by workers)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge


class SleepOnMarker(TransformerMixin, BaseEstimator):
    """Passes data through; sleeps for an hour when the first input is 999 (a hung fit). With a
    file ``log``, appends ``sleep PID`` before it sleeps and ``woke PID`` if it ever wakes."""

    def __init__(self, log=""):
        self.log = log

    def fit(self, x, y=None):
        if np.any(np.asarray(x)[:, 0] == 999.0):
            _log_fit(self.log, f"sleep {os.getpid()}")
            time.sleep(3600)
            _log_fit(self.log, f"woke {os.getpid()}")
        return self

    def transform(self, x):
        return x


class WaitOnMarker(TransformerMixin, BaseEstimator):
    """Passes data through; when the first input is 555 (the marker), waits until the file
    ``release`` exists (at most ten minutes): a partition that holds its run until the test lets
    it go, so that a stop (a walltime, a signal) comes while it waits, however fast the rest."""

    def __init__(self, release=""):
        self.release = release

    def fit(self, x, y=None):
        if self.release and np.any(np.asarray(x)[:, 0] == 555.0):
            for _ in range(6000):
                if os.path.exists(self.release):
                    break
                time.sleep(0.1)
        return self

    def transform(self, x):
        return x


class BlockOnce(TransformerMixin, BaseEstimator):
    """Passes data through. The first fit given the file ``gate`` (the one that creates it)
    writes its process id there and blocks until the file ``gate + ".open"`` exists (at most
    ten minutes): a worker that holds work, for a test to kill. Every later fit passes."""

    def __init__(self, gate=""):
        self.gate = gate

    def fit(self, x, y=None):
        if not self.gate:
            return self
        draft = f"{self.gate}.{os.getpid()}.{time.monotonic_ns()}"
        with open(draft, "w") as file:
            file.write(f"{os.getpid()}\n")
        try:
            os.link(draft, self.gate)  # creates the gate with its content, or fails: it exists
        except FileExistsError:
            return self
        finally:
            os.unlink(draft)
        for _ in range(6000):
            if os.path.exists(self.gate + ".open"):
                break
            time.sleep(0.1)
        return self

    def transform(self, x):
        return x


class CrashOnMarker(TransformerMixin, BaseEstimator):
    """Passes data through; kills its own process when the first input is -999 (a crash)."""

    def fit(self, x, y=None):
        if np.any(np.asarray(x)[:, 0] == -999.0):
            os.kill(os.getpid(), signal.SIGKILL)
        return self

    def transform(self, x):
        return x


PRINTED = "printed by tests_support.PrintsOnFit"


class PrintsOnFit(TransformerMixin, BaseEstimator):
    """Passes data through; prints a line from Python (``print``, to ``sys.stdout``) at each
    fit, as chatty estimators do."""

    def fit(self, x, y=None):
        print(f"{PRINTED}: {len(x)} rows")
        return self

    def transform(self, x):
        return x


class InterruptOnFit(TransformerMixin, BaseEstimator):
    """Passes data through; the first fit that creates the file ``marker`` sends SIGINT to its
    own process: Ctrl-C during a run whose workers are threads of the driver."""

    def __init__(self, marker=""):
        self.marker = marker

    def fit(self, x, y=None):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except (FileExistsError, FileNotFoundError):
            return self
        os.kill(os.getpid(), signal.SIGINT)
        return self

    def transform(self, x):
        return x


def _log_fit(path: str, line: str) -> None:
    if path:
        with open(path, "a") as log:  # one short append per fit: whole lines, from any process
            log.write(line + "\n")


class CountingPCA(PCA):
    """PCA that appends a line to the file ``log`` at each fit."""

    def __init__(self, n_components=None, *, log=""):
        super().__init__(n_components=n_components)
        self.log = log

    def fit(self, x, y=None):
        _log_fit(self.log, f"pca n_components={self.n_components} rows={len(x)}")
        return super().fit(x, y)

    def fit_transform(self, x, y=None):
        _log_fit(self.log, f"pca n_components={self.n_components} rows={len(x)}")
        return super().fit_transform(x, y)


class CountingRidge(Ridge):
    """Ridge that appends a line to the file ``log`` at each fit."""

    def __init__(self, alpha=1.0, *, log=""):
        super().__init__(alpha=alpha)
        self.log = log

    def fit(self, x, y, sample_weight=None):
        _log_fit(self.log, self._line(x))
        return super().fit(x, y, sample_weight)

    def _line(self, x) -> str:
        return f"ridge alpha={self.alpha} rows={len(x)}"


FIT_SECONDS = "HPCTUNE_TEST_FIT_SECONDS"


class SlowRidge(CountingRidge):
    """Ridge whose fit takes ``$HPCTUNE_TEST_FIT_SECONDS`` (0.1 s by default) longer: searches
    long enough for every worker to get some, or to act during a run (kill a worker, press
    Ctrl-C, watch the queue). With a file ``log``, appends a line there as each fit starts."""

    def fit(self, x, y, sample_weight=None):
        _log_fit(self.log, self._line(x))
        time.sleep(float(os.environ.get(FIT_SECONDS, "0.1")))
        return Ridge.fit(self, x, y, sample_weight)


class CollectorProbe(CountingRidge):
    """Ridge that appends, at each fit, whether Python's cyclic garbage collector is on and how
    many objects are frozen, to the file ``log``."""

    def _line(self, x) -> str:
        import gc

        return f"enabled={gc.isenabled()} frozen={gc.get_freeze_count()}"


def fast_then_slow(path: str, release: str = "") -> int:
    """A task that returns at once the first time and takes a minute each time after: a
    finished task whose result was lost with its worker, then computed again. Appends a line
    ``start`` to ``path`` at each start and ``end`` as it returns; returns the number of the
    run. Given a file ``release``, a run after the first ends as soon as that file exists (and
    at the latest after the minute)."""
    with open(path, "a") as log:
        log.write("start\n")
    with open(path) as log:
        run = sum(1 for line in log if line == "start\n")
    if run > 1:
        for _ in range(600):
            if release and os.path.exists(release):
                break
            time.sleep(0.1)
    with open(path, "a") as log:
        log.write("end\n")
    return run


class Tattletale:
    """Leaves the file named by ``$HPCTUNE_TATTLETALE`` behind the moment an instance is
    rebuilt from a model file: proof that a loader ran something the file asked for."""

    def __setstate__(self, state):
        path = os.environ.get("HPCTUNE_TATTLETALE")
        if path:
            with open(path, "w") as handle:
                handle.write("rebuilt\n")
        self.__dict__.update(state)


class SlowToSend:
    """A task's result whose pickling (on the worker, when the driver fetches it) takes
    ``seconds``: a fetch that runs past the driver's poll, as on a loaded machine. It arrives
    as ``value``."""

    def __init__(self, seconds: float, value: dict) -> None:
        self.seconds = seconds
        self.value = value

    def __reduce__(self):
        time.sleep(self.seconds)
        return (dict, (self.value,))


def slow_to_send(seconds: float, value: dict) -> SlowToSend:
    return SlowToSend(seconds, value)


def raise_unbound_local() -> None:
    del_me = 1
    del del_me
    return del_me  # noqa: F821 - the task's own UnboundLocalError
