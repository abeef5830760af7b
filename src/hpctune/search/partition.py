"""One partition's search: its valid rows, the dask-ml search on them, the test-period scores,
and the record of the outcome.

The search is dask-ml's ``GridSearchCV`` / ``RandomizedSearchCV``: its graph hashes pipeline
steps, so a step shared by several candidates (a scaler before an SVR) is fitted once per fold.
It is built with ``iid=False`` so that fold scores are averaged as scikit-learn does, and with
an explicit ``cv`` splitter and ``error_score``.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..output.record import TEST_METRICS, PartitionResult
from ..spec import SearchSpec, TrainWindow
from .cv import make_cv, n_folds
from .estimator import build_estimator, fast_checks, n_candidates, param_space
from .fixed import apply_fixed
from .halving import is_halving, iterations, make_halving_search
from .labels import as_target, has_label, is_constant, shown
from .metrics import is_classifier, scorer_scores
from .surface import score_arrays
from .targets import Targets, per_target_scores


def rank_nan_last(values: Any, method: str = "min") -> np.ndarray:
    """scipy's ``rankdata`` of negated mean scores, ranking NaN (a failed candidate) last.

    dask-ml ranks candidates with ``rankdata``, which gives every rank NaN as soon as one mean
    score is NaN: with ``error_score: nan`` a single failing candidate left no rank 1 and the
    search raised IndexError. scikit-learn ranks NaN last, and all ranks 1 when every score is
    NaN (the refit then shows the candidate's own error); this does the same.
    """
    from scipy.stats import rankdata

    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    if missing.all():
        return np.ones(values.shape, dtype=np.int32)
    if missing.any():
        values = np.where(missing, np.nanmax(values) + 1, values)
    return rankdata(values, method=method)


def make_search(
    search: SearchSpec, estimator: Any, cv: Any, scheduler: Any = "sync", n_rows: int | None = None
) -> Any:
    """The dask-ml search object for one partition (scikit-learn's for a halving method, on
    the partition's ``n_rows`` training rows)."""
    if is_halving(search):
        space = param_space(search)
        return make_halving_search(search, estimator, cv, space, n_candidates(search), n_rows)
    import dask_ml.model_selection as dms
    import dask_ml.model_selection.methods as dask_ml_methods

    dask_ml_methods.rankdata = rank_nan_last  # its only use: ranking mean test scores

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


@dataclass
class PartitionRows:
    """Valid rows of one partition, split into the training and the test period."""

    x_train: np.ndarray
    y_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def select_rows(
    x: np.ndarray,
    y: np.ndarray,
    times: np.ndarray,
    test_start: np.datetime64 | None,
    window: TrainWindow | None = None,
) -> PartitionRows:
    """Drop rows with NaN or +-inf in an input or a target (``y``: (rows,) or (rows, targets))
    or no text label ("", None: :mod:`.labels`); split off the test period; keep the training
    rows inside ``data.train``'s window (the test period is not narrowed)."""
    valid = has_label(y) & np.isfinite(x).all(axis=-1)
    train = valid if test_start is None else valid & (times < test_start)
    if window is not None:
        train = train & window.contains(times)
    test = np.zeros_like(valid) if test_start is None else valid & (times >= test_start)
    as_float = np.float64
    return PartitionRows(
        x_train=x[train].astype(as_float, copy=False),
        y_train=as_target(y[train]),
        t_train=times[train],
        x_test=x[test].astype(as_float, copy=False),
        y_test=as_target(y[test]),
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
        self,
        search: SearchSpec,
        test_start: Any = None,
        save_models: bool = True,
        window: TrainWindow | None = None,
    ) -> None:
        import dask_ml.model_selection  # noqa: F401 - imported here, not in the first search

        self.search = search
        self.estimator = apply_fixed(search, build_estimator(search))
        self.classifier = is_classifier(self.estimator)  # test period: the spec's scorers
        self.targets = Targets(search, self.estimator)  # several: wrapped where needed
        self.test_start = None if test_start is None else np.datetime64(test_start, "ns")
        self.save_models = save_models
        self.window = window

    def run(
        self,
        index: int,
        x: np.ndarray,
        y: np.ndarray,
        times: np.ndarray,
        node: str = "",
        scheduler: Any = "sync",
    ) -> PartitionResult:
        rows = select_rows(x, y, times, self.test_start, self.window)
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
        if is_constant(rows.y_train):
            result.status = "skipped"
            result.reason = (
                f"the target is constant ({shown(rows.y_train[0])}) over the {result.n_train} "
                "training rows: nothing to learn"
                if rows.y_train.ndim == 1
                else f"every target is constant over the {result.n_train} training rows: "
                "nothing to learn"
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
        estimator, search, spec_name = self.targets.for_rows(rows.y_train)
        searcher = make_search(search, estimator, cv, scheduler, len(rows.y_train))
        started = time.perf_counter()
        with fast_checks(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            searcher.fit(rows.x_train, rows.y_train)
        result.fit_seconds = time.perf_counter() - started
        cv_results = searcher.cv_results_
        best = int(searcher.best_index_)
        result.best_params = {spec_name(k): v for k, v in searcher.best_params_.items()}
        result.cv_scores = {
            scorer: float(
                cv_results[
                    f"mean_test_{scorer}" if len(self.search.scoring) > 1 else "mean_test_score"
                ][best]
            )
            for scorer in self.search.scoring
        }
        result.best_score = result.cv_scores[self.search.refit_metric]
        if is_halving(self.search):
            result.halving = iterations(searcher)
        else:
            result.cv_results = score_arrays(cv_results, list(self.search.scoring))
        if not math.isfinite(result.best_score):
            raise ValueError(f"every candidate scored NaN on {self.search.refit_metric}")
        model = searcher.best_estimator_
        if rows.y_test.size and self.classifier:
            result.test_scores = scorer_scores(self.search.scoring, model, rows.x_test, rows.y_test)
        elif rows.y_test.size and rows.y_test.ndim == 2:
            predicted = model.predict(rows.x_test)
            result.test_scores = per_target_scores(rows.y_test, predicted, holdout_scores)
        elif rows.y_test.size:
            result.test_scores = holdout_scores(rows.y_test, model.predict(rows.x_test))
        if self.save_models:
            from .model_file import dump_model

            result.model = dump_model(model)


class SearchTimeout(TimeoutError):
    """A search ran past ``search.timeout`` and was stopped."""

    def __init__(self, limit: float) -> None:
        super().__init__(f"the search took longer than search.timeout={limit:g} s and was stopped")


def describe_exception(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` on one line, clipped (our own timeouts: the message alone)."""
    text = " ".join(str(exc).split()) or "(no message)"
    line = text if isinstance(exc, SearchTimeout) else f"{type(exc).__name__}: {text}"
    return line if len(line) <= limit else line[: limit - 3] + "..."
