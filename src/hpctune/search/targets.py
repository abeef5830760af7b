"""Several targets per partition (``data.target`` a list): one model predicts them all.

An estimator that fits several outputs itself gets the 2-D target as it is: scikit-learn's tag
``target_tags.multi_output`` (``sklearn.utils.get_tags``; a pipeline has its last step's)
says which do (Ridge, LinearRegression, RandomForest, KNeighbors, XGBoost, ...), and
:data:`NATIVE_UNTAGGED` lists the regressors that fit several outputs without the tag
(MLPRegressor). Any other regressor (SVR, GradientBoosting, LightGBM, ...) is wrapped, whole
pipeline and all, in scikit-learn's ``MultiOutputRegressor``: one fitted copy per target,
the same candidate's parameters for every target. The wrapper's parameters carry the prefix
``estimator__``; the search is given the spec's names with it, and ``best_*`` (and every
record) keeps the spec's own names.

The cv scores and ``refit`` are scikit-learn's multi-output scores (``r2`` and the error
scorers: the uniform average over the targets); the test-period metrics are given per target
(:func:`per_target_scores`), in the order of ``data.target``.

A classifier with several targets is refused (:func:`check_targets`): its scorers (accuracy,
f1, roc_auc) do not take several label columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import SpecError
from ..spec import DataSpec, SearchSpec
from .metrics import is_classifier

WRAP_PREFIX = "estimator__"
"""What ``MultiOutputRegressor`` puts before each parameter name of the estimator it wraps."""

NATIVE_UNTAGGED = frozenset({"sklearn.neural_network._multilayer_perceptron.MLPRegressor"})
"""Regressors that fit a 2-D target themselves though their tags do not say so (measured on
scikit-learn 1.9: every regressor of ``all_estimators`` fitted on three targets)."""


def native_multi_output(estimator: Any) -> bool:
    """Whether ``estimator`` (or a pipeline's last step) fits several targets itself."""
    from sklearn.utils import get_tags

    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    kind = type(final)
    if f"{kind.__module__}.{kind.__qualname__}" in NATIVE_UNTAGGED:
        return True
    try:
        return bool(get_tags(estimator).target_tags.multi_output)
    except Exception:  # an estimator whose tags cannot be read: wrapped, which always works
        return False


def check_targets(data: DataSpec, search: SearchSpec, estimator: Any) -> None:
    """Refuse several targets for a classifier (a :class:`SpecError` on ``data.target``) and
    a scorer that scores one target only (``neg_max_error``, the Poisson and Gamma deviances:
    on ``search.scoring``), found by scoring a stand-in model on three positive targets."""
    if not data.multi_target:
        return
    if is_classifier(estimator):
        raise SpecError(
            "data.target",
            f"several targets ({', '.join(data.targets)}) need a regressor; a classifier's "
            "scorers take one label column: give one target per spec",
        )
    import warnings

    from sklearn.dummy import DummyRegressor
    from sklearn.metrics import get_scorer

    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    y = 1.0 + np.arange(18, dtype=np.float64).reshape(6, 3) % 5
    stand_in = DummyRegressor().fit(x, y)
    for name in search.scoring:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                get_scorer(name)(stand_in, x, y)
        except Exception as exc:
            text = " ".join(str(exc).split())
            raise SpecError(
                "search.scoring",
                f"{name!r} does not score several targets ({text}); choose a scorer that "
                "does, such as r2 or neg_mean_squared_error",
            ) from None


def describe_targets(data: DataSpec, estimator: Any) -> dict[str, Any] | None:
    """What validate and results.nc say about the targets: their names and how one model
    predicts them (``native`` or ``MultiOutputRegressor``); None for a single target."""
    if not data.multi_target:
        return None
    native = native_multi_output(estimator)
    return {
        "names": list(data.targets),
        "model": "native" if native else "MultiOutputRegressor",
        "line": (
            f"{len(data.targets)} targets ({', '.join(data.targets)}): "
            + (
                "one model fits them all (native multi-output)"
                if native
                else "wrapped in MultiOutputRegressor (one fit per target, same parameters)"
            )
        ),
    }


class Targets:
    """How a partition's search treats its target array: 1-D as always, or several targets
    (2-D), with the estimator wrapped where it needs to be."""

    def __init__(self, search: SearchSpec, estimator: Any) -> None:
        self.search = search
        self.estimator = estimator
        self._wrapped: Any = None

    def for_rows(self, y: np.ndarray) -> tuple[Any, SearchSpec, Callable[[str], str]]:
        """The estimator to search, the spec whose names it takes, and the map from its
        parameter names back to the spec's, for target rows ``y``."""
        if y.ndim == 1 or native_multi_output(self.estimator):
            return self.estimator, self.search, _same
        if self._wrapped is None:
            from sklearn.multioutput import MultiOutputRegressor

            self._wrapped = (MultiOutputRegressor(self.estimator), _prefixed(self.search))
        wrapped, search = self._wrapped
        return wrapped, search, _unprefixed


def _same(name: str) -> str:
    return name


def _unprefixed(name: str) -> str:
    return name.removeprefix(WRAP_PREFIX)


def _prefixed(search: SearchSpec) -> SearchSpec:
    """``search`` with the wrapper's names: its parameters (and a halving resource that is
    a parameter) prefixed with ``estimator__``."""
    update: dict[str, Any] = {
        "params": {WRAP_PREFIX + name: values for name, values in search.params.items()}
    }
    halving = search.halving
    if halving is not None and halving.resource != "n_samples":
        update["halving"] = halving.model_copy(update={"resource": WRAP_PREFIX + halving.resource})
    return search.model_copy(update=update)


def per_target_scores(
    y_true: np.ndarray, y_pred: np.ndarray, score: Callable[..., dict[str, float]]
) -> dict[str, Any]:
    """``score`` (the test-period metrics of one target) of each column: each metric as a
    list over the targets, in ``data.target``'s order."""
    y_pred = np.asarray(y_pred).reshape(y_true.shape)
    columns = [score(y_true[:, j], y_pred[:, j]) for j in range(y_true.shape[1])]
    return {name: [c[name] for c in columns] for name in columns[0]}
