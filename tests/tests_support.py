"""Estimators that misbehave on purpose, for the fault tests (importable by worker processes)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


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
