"""The cv kinds, as a registry: each kind builds its scikit-learn splitter and says how many
folds it makes. A new kind is one entry here (and its name in ``CVSpec.kind``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..spec import CVSpec


@dataclass(frozen=True)
class CVKind:
    """One kind of cross-validation: ``splitter(cv, seed, times)`` builds the splitter of a
    partition (``times``: its training rows' times), ``folds(cv, times)`` counts its folds
    (None when they depend on times that are not known)."""

    splitter: Callable[[CVSpec, int, np.ndarray | None], Any]
    folds: Callable[[CVSpec, np.ndarray | None], int | None]


def _kfold(cv: CVSpec, seed: int, _times: np.ndarray | None) -> Any:
    from sklearn import model_selection as ms

    shuffle = bool(cv.shuffle)
    return ms.KFold(n_splits=cv.n_splits, shuffle=shuffle, random_state=seed if shuffle else None)


def _repeated(cv: CVSpec, seed: int, _times: np.ndarray | None) -> Any:
    from sklearn import model_selection as ms

    return ms.RepeatedKFold(n_splits=cv.n_splits, n_repeats=cv.n_repeats, random_state=seed)


def _timeseries(cv: CVSpec, _seed: int, _times: np.ndarray | None) -> Any:
    from sklearn import model_selection as ms

    return ms.TimeSeriesSplit(n_splits=cv.n_splits)


def _years(_cv: CVSpec, _seed: int, times: np.ndarray | None) -> Any:
    from sklearn import model_selection as ms

    if times is None:
        raise ValueError("cv kind 'years' needs the time of each row")
    years = times.astype("datetime64[Y]").astype(np.int64)
    return ms.PredefinedSplit(test_fold=years - years.min())


def _year_count(_cv: CVSpec, times: np.ndarray | None) -> int | None:
    if times is None:
        return None
    return int(np.unique(times.astype("datetime64[Y]")).size)


CV_KINDS: dict[str, CVKind] = {
    "kfold": CVKind(_kfold, lambda cv, _times: cv.n_splits),
    "repeated": CVKind(_repeated, lambda cv, _times: cv.n_splits * cv.n_repeats),
    "timeseries": CVKind(_timeseries, lambda cv, _times: cv.n_splits),
    "years": CVKind(_years, _year_count),
}
"""Every cv kind by its ``search.cv.kind`` name."""


def make_cv(cv: CVSpec, seed: int, times: np.ndarray | None = None) -> Any:
    """The scikit-learn splitter for ``cv``; ``years`` needs the rows' times."""
    return CV_KINDS[cv.kind].splitter(cv, seed, times)


def n_folds(cv: CVSpec, times: np.ndarray | None = None) -> int | None:
    """Folds of the splitter; for ``years`` the number of distinct years in ``times``."""
    return CV_KINDS[cv.kind].folds(cv, times)
