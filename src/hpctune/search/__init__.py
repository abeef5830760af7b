"""Build the estimator and the dask-ml search of a spec, and run it on one partition's rows.

The search is dask-ml's ``GridSearchCV`` / ``RandomizedSearchCV``: its graph hashes pipeline
steps, so a step shared by several candidates (a scaler before an SVR) is fitted once per fold.
It is built with ``iid=False`` so that fold scores are averaged as scikit-learn does, and with
an explicit ``cv`` splitter and ``error_score``.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SpecError
from ..output.record import TEST_METRICS, PartitionResult
from ..spec import CVSpec, SearchSpec

# --------------------------------------------------------------------------- building


def import_estimator(path: str, key: str = "search.estimator") -> type:
    """The scikit-learn estimator class at ``path`` (``module.Class``)."""
    from sklearn.base import BaseEstimator

    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(key, f"cannot import {module_name!r} for {path!r}: {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        close = difflib.get_close_matches(
            attr, [n for n in dir(module) if not n.startswith("_")], 3
        )
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SpecError(key, f"module {module_name!r} has no {attr!r}{hint}") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseEstimator)):
        raise SpecError(key, f"{path!r} is not a scikit-learn estimator class")
    return obj


def build_estimator(search: SearchSpec) -> Any:
    """One estimator, or a ``make_pipeline`` of several (step names are lower-case class names)."""
    from sklearn.pipeline import make_pipeline

    classes = [import_estimator(path) for path in search.estimator]
    steps = []
    for path, cls in zip(search.estimator, classes, strict=True):
        try:
            steps.append(cls())
        except Exception as exc:
            raise SpecError("search.estimator", f"cannot create {path}(): {exc}") from None
    return steps[0] if len(steps) == 1 else make_pipeline(*steps)


def check_params(search: SearchSpec, estimator: Any) -> None:
    """Every searched parameter must be one of the estimator's ``get_params()``."""
    known = estimator.get_params(deep=True)
    tunable = [k for k in known if "__" in k] if len(search.estimator) > 1 else list(known)
    for name in search.params:
        if name not in known:
            close = difflib.get_close_matches(name, tunable, n=1, cutoff=0.6)
            listing = _clip(", ".join(tunable))
            hint = f"did you mean {close[0]}?" if close else f"parameters: {listing}"
            message = f"not a parameter of {_describe(search)}; {hint}"
            raise SpecError(f"search.params.{name}", message)


def check_scoring(search: SearchSpec) -> None:
    from sklearn.metrics import get_scorer_names

    names = get_scorer_names()
    for scorer in search.scoring:
        if scorer not in names:
            close = difflib.get_close_matches(scorer, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SpecError("search.scoring", f"unknown scorer {scorer!r}{hint}")


def _describe(search: SearchSpec) -> str:
    names = [p.rpartition(".")[2] for p in search.estimator]
    return names[0] if len(names) == 1 else f"the pipeline {' -> '.join(names)}"


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def candidates(search: SearchSpec) -> list[dict[str, Any]]:
    """The parameter sets the search will try (a random search draws them from its seed)."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    space = param_space(search)
    if search.method == "grid":
        return list(ParameterGrid(space))
    return list(ParameterSampler(space, n_iter=n_candidates(search), random_state=search.seed))


def check_candidates(search: SearchSpec, estimator: Any) -> None:
    """Validate every candidate's parameter values once, before any partition is fitted.

    The fits themselves then skip scikit-learn's per-call parameter validation
    (:func:`fast_checks`), which is a large share of the cost of a small fit.
    """
    from sklearn.base import clone
    from sklearn.utils._param_validation import InvalidParameterError

    for candidate in candidates(search):
        model = clone(estimator).set_params(**candidate)
        for step in getattr(model, "steps", [("", model)]):
            validate = getattr(step[1], "_validate_params", None)
            if validate is None or not hasattr(step[1], "_parameter_constraints"):
                continue
            try:
                validate()
            except InvalidParameterError as exc:
                raise SpecError(_param_key(search, exc, candidate), _sentence(exc)) from None


def _param_key(search: SearchSpec, exc: Exception, candidate: dict[str, Any]) -> str:
    text = str(exc)
    for name in candidate:
        if f"'{name.rpartition('__')[2]}' parameter" in text:
            return f"search.params.{name}"
    return "search.params"


def _sentence(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:1].lower() + text[1:]


@contextlib.contextmanager
def fast_checks() -> Iterator[None]:
    """Skip checks already done once for the whole run: parameter values (validated by
    :func:`check_candidates`) and finiteness (rows with NaN or inf are dropped before the fit)."""
    import sklearn

    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        yield


def param_space(search: SearchSpec) -> dict[str, Any]:
    """The grid (lists) or, for a random search, lists and scipy distributions."""
    from scipy import stats

    space: dict[str, Any] = {}
    for name, values in search.params.items():
        if isinstance(values, dict):
            ((kind, (low, high)),) = values.items()
            if kind == "loguniform":
                space[name] = stats.loguniform(low, high)
            elif kind == "uniform":
                space[name] = stats.uniform(low, high - low)
            else:
                space[name] = stats.randint(low, high)
        else:
            space[name] = list(values)
    return space


def n_candidates(search: SearchSpec) -> int:
    sizes = [len(v) if isinstance(v, list) else math.inf for v in search.params.values()]
    grid = math.prod(sizes)
    if search.method == "grid":
        return int(grid)
    return int(min(search.n_iter, grid))


def make_cv(cv: CVSpec, seed: int, times: np.ndarray | None = None) -> Any:
    """The scikit-learn splitter for ``cv``; ``years`` needs the rows' times."""
    from sklearn import model_selection as ms

    if cv.kind == "kfold":
        shuffle = bool(cv.shuffle)
        return ms.KFold(
            n_splits=cv.n_splits, shuffle=shuffle, random_state=seed if shuffle else None
        )
    if cv.kind == "repeated":
        return ms.RepeatedKFold(n_splits=cv.n_splits, n_repeats=cv.n_repeats, random_state=seed)
    if cv.kind == "timeseries":
        return ms.TimeSeriesSplit(n_splits=cv.n_splits)
    if times is None:
        raise ValueError("cv kind 'years' needs the time of each row")
    years = times.astype("datetime64[Y]").astype(np.int64)
    return ms.PredefinedSplit(test_fold=years - years.min())


def n_folds(cv: CVSpec, times: np.ndarray | None = None) -> int | None:
    """Folds of the splitter; for ``years`` the number of distinct years in ``times``."""
    if cv.kind == "kfold" or cv.kind == "timeseries":
        return cv.n_splits
    if cv.kind == "repeated":
        return cv.n_splits * cv.n_repeats
    if times is None:
        return None
    return int(np.unique(times.astype("datetime64[Y]")).size)


def make_search(search: SearchSpec, estimator: Any, cv: Any, scheduler: Any = "sync") -> Any:
    """The dask-ml search object for one partition."""
    import dask_ml.model_selection as dms

    multi = len(search.scoring) > 1
    common: dict[str, Any] = {
        "scoring": list(search.scoring) if multi else search.scoring[0],
        "refit": search.refit_metric if multi else True,
        "cv": cv,
        "iid": False,
        "error_score": "raise" if search.error_score == "raise" else np.nan,
        "return_train_score": False,
        "scheduler": scheduler,
        "cache_cv": True,
    }
    space = param_space(search)
    if search.method == "grid":
        return dms.GridSearchCV(estimator, space, **common)
    return dms.RandomizedSearchCV(
        estimator, space, n_iter=n_candidates(search), random_state=search.seed, **common
    )


# --------------------------------------------------------------------------- running


@dataclass
class PartitionRows:
    """Valid rows of one partition, split into the training and the test period."""

    x_train: np.ndarray
    y_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def select_rows(
    x: np.ndarray, y: np.ndarray, times: np.ndarray, test_start: np.datetime64 | None
) -> PartitionRows:
    """Drop rows with NaN or +-inf in an input or the target; split off the test period."""
    valid = np.isfinite(y) & np.isfinite(x).all(axis=-1)
    train = valid if test_start is None else valid & (times < test_start)
    test = np.zeros_like(valid) if test_start is None else valid & (times >= test_start)
    as_float = np.float64
    return PartitionRows(
        x_train=x[train].astype(as_float, copy=False),
        y_train=y[train].astype(as_float, copy=False),
        t_train=times[train],
        x_test=x[test].astype(as_float, copy=False),
        y_test=y[test].astype(as_float, copy=False),
    )


def holdout_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """r2, rmse, mae and Pearson's r of predictions on the test period.

    The formulas of scikit-learn's ``r2_score`` (a constant ``y_true`` gives 1 for a perfect
    prediction, else 0), ``mean_squared_error`` and ``mean_absolute_error``, in plain numpy:
    their input checks cost 1.9 ms a partition, more than a whole search of cheap fits.
    """
    n = y_true.size
    if n == 0:
        return dict.fromkeys(TEST_METRICS, math.nan)
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    if not np.isfinite(y_pred).all():
        raise ValueError("the best model's predictions on the test period are not all finite")
    error = y_true - y_pred
    ss_res = float(error @ error)
    r2 = pearson = math.nan
    if n > 1:
        centred = y_true - y_true.mean()
        ss_tot = float(centred @ centred)
        if ss_tot == 0:
            r2 = 1.0 if ss_res == 0 else 0.0
        else:
            r2 = 1.0 - ss_res / ss_tot
            pred_centred = y_pred - y_pred.mean()
            ss_pred = float(pred_centred @ pred_centred)
            if ss_pred > 0:
                r = float(centred @ pred_centred) / math.sqrt(ss_tot * ss_pred)
                pearson = max(-1.0, min(1.0, r))
    return {
        "r2": r2,
        "rmse": math.sqrt(ss_res / n),
        "mae": float(np.abs(error).mean()),
        "pearson": pearson,
    }


class PartitionSearch:
    """Runs the spec's search on one partition's rows; built once per process and reused."""

    def __init__(
        self, search: SearchSpec, test_start: Any = None, save_models: bool = True
    ) -> None:
        import dask_ml.model_selection  # noqa: F401 - imported here, not in the first search

        self.search = search
        self.estimator = build_estimator(search)
        self.test_start = None if test_start is None else np.datetime64(test_start, "ns")
        self.save_models = save_models

    def run(
        self,
        index: int,
        x: np.ndarray,
        y: np.ndarray,
        times: np.ndarray,
        node: str = "",
        scheduler: Any = "sync",
    ) -> PartitionResult:
        rows = select_rows(x, y, times, self.test_start)
        result = PartitionResult(
            index=index, status="ok", n_train=len(rows.y_train), n_test=len(rows.y_test), node=node
        )
        if result.n_train < self.search.min_samples:
            result.status = "skipped"
            result.reason = (
                f"{result.n_train} valid training rows, fewer than search.min_samples="
                f"{self.search.min_samples}"
            )
            return result
        if np.ptp(rows.y_train) == 0:
            result.status = "skipped"
            result.reason = (
                f"the target is constant ({rows.y_train[0]:g}) over the {result.n_train} "
                "training rows: nothing to learn"
            )
            return result
        try:
            self._fit(rows, result, scheduler)
        except Exception as exc:  # a partition's failure is recorded, the run goes on
            result.status = "failed"
            result.reason = describe_exception(exc)
            result.model = None
        return result

    def _fit(self, rows: PartitionRows, result: PartitionResult, scheduler: Any) -> None:
        cv = make_cv(self.search.cv, self.search.seed, rows.t_train)
        folds = n_folds(self.search.cv, rows.t_train)
        if folds is not None and folds < 2:
            raise ValueError(
                f"cv kind 'years' needs at least 2 years of training rows; got {folds}"
            )
        searcher = make_search(self.search, self.estimator, cv, scheduler=scheduler)
        started = time.perf_counter()
        with fast_checks(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            searcher.fit(rows.x_train, rows.y_train)
        result.fit_seconds = time.perf_counter() - started
        cv_results = searcher.cv_results_
        best = int(searcher.best_index_)
        result.best_params = dict(searcher.best_params_)
        result.cv_scores = {
            scorer: float(
                cv_results[
                    f"mean_test_{scorer}" if len(self.search.scoring) > 1 else "mean_test_score"
                ][best]
            )
            for scorer in self.search.scoring
        }
        result.best_score = result.cv_scores[self.search.refit_metric]
        if not math.isfinite(result.best_score):
            raise ValueError(f"every candidate scored NaN on {self.search.refit_metric}")
        model = searcher.best_estimator_
        if rows.y_test.size:
            result.test_scores = holdout_scores(rows.y_test, model.predict(rows.x_test))
        if self.save_models:
            import skops.io

            result.model = skops.io.dumps(model)


class SearchTimeout(TimeoutError):
    """A search ran past ``search.timeout`` and was stopped."""

    def __init__(self, limit: float) -> None:
        super().__init__(f"the search took longer than search.timeout={limit:g} s and was stopped")


def describe_exception(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` on one line, clipped (our own timeouts: the message alone)."""
    text = " ".join(str(exc).split()) or "(no message)"
    line = text if isinstance(exc, SearchTimeout) else f"{type(exc).__name__}: {text}"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def work_counts(search: SearchSpec, n_partitions: int, folds: int | None) -> dict[str, Any]:
    """Candidates, folds and fits of a whole run (refits included), for ``validate``."""
    candidates = n_candidates(search)
    per_partition = None if folds is None else candidates * folds + 1
    return {
        "method": search.method,
        "candidates": candidates,
        "folds": folds,
        "fits_per_partition": per_partition,
        "fits": None if per_partition is None else per_partition * n_partitions,
    }
