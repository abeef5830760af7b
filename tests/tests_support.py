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
    """Passes data through; sleeps for an hour when the first input is 999 (a hung fit)."""

    def fit(self, x, y=None):
        if np.any(np.asarray(x)[:, 0] == 999.0):
            time.sleep(3600)
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


class SlowRidge(Ridge):
    """Ridge whose fit takes ``$HPCTUNE_TEST_FIT_SECONDS`` (0.1 s by default) longer: searches
    long enough for every worker to get some, or to act during a run (kill a worker, press
    Ctrl-C, watch the queue)."""

    def fit(self, x, y, sample_weight=None):
        time.sleep(float(os.environ.get(FIT_SECONDS, "0.1")))
        return super().fit(x, y, sample_weight)


class CollectorProbe(CountingRidge):
    """Ridge that appends, at each fit, whether Python's cyclic garbage collector is on and how
    many objects are frozen, to the file ``log``."""

    def _line(self, x) -> str:
        import gc

        return f"enabled={gc.isenabled()} frozen={gc.get_freeze_count()}"


def fast_then_slow(path: str) -> int:
    """A task that returns at once the first time and takes a minute each time after: a
    finished task whose result was lost with its worker, then computed again. Appends a line
    to ``path`` at each start; returns the number of the run."""
    with open(path, "a") as log:
        log.write("start\n")
    with open(path) as log:
        run = sum(1 for _ in log)
    if run > 1:
        time.sleep(60)
    return run
