"""The test-period metrics of a spec: which ones results.nc holds, and a classifier's scores.

A regressor's test period is scored with the fixed regression set (``TEST_METRICS``: r2, rmse,
mae, Pearson's r, :func:`hpctune.search.partition.holdout_scores`). A classifier (scikit-learn's
``is_classifier`` of the built estimator: a classifier, or a pipeline ending in one) is scored
with the spec's own scorers (``search.scoring``: accuracy, f1, roc_auc, ...), each evaluated as
scikit-learn's ``get_scorer(name)(model, x_test, y_test)``: the scorer asks the model for
``predict``, ``predict_proba`` or ``decision_function`` as it needs. results.nc names them
``test_<scorer>``.

A scorer that cannot score the test period (roc_auc when the period holds one class only, f1
with its binary default on three classes) gives NaN for that metric: the partition stays ``ok``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..output.record import TEST_METRICS
from ..spec import SearchSpec
from .estimator import build_estimator
from .fixed import apply_fixed


def is_classifier(estimator: Any) -> bool:
    """Whether ``estimator`` (one estimator or a pipeline) is a scikit-learn classifier."""
    from sklearn.base import is_classifier as sklearn_is_classifier

    return bool(sklearn_is_classifier(estimator))


def test_metric_names(search: SearchSpec, estimator: Any = None) -> tuple[str, ...]:
    """The metrics results.nc holds as ``test_<name>``: the spec's scorers for a classifier,
    the regression set otherwise (``estimator``: the built one, else built from ``search`` as
    each partition builds it)."""
    if estimator is None:
        estimator = apply_fixed(search, build_estimator(search))
    return tuple(search.scoring) if is_classifier(estimator) else TEST_METRICS


test_metric_names.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def scorer_scores(
    scoring: Sequence[str], model: Any, x_test: np.ndarray, y_test: np.ndarray
) -> dict[str, float]:
    """Each scorer of ``scoring`` on the test rows, as scikit-learn's ``get_scorer`` gives it;
    NaN for a scorer that cannot score them (one class only, an undefined average)."""
    from sklearn.metrics import get_scorer

    scores: dict[str, float] = {}
    for name in scoring:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = float(get_scorer(name)(model, x_test, y_test))
        except (ValueError, TypeError, AttributeError, IndexError):
            value = math.nan
        scores[name] = value if math.isfinite(value) else math.nan
    return scores
