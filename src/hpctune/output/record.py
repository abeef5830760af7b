"""The record of one partition's search: what a journal line and a row of results.nc hold.

The search writes records of this schema and the output folder reads them back, so neither
depends on the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Metrics computed on the held-out test period, in results.nc as ``test_<name>``.
TEST_METRICS = ("r2", "rmse", "mae", "pearson")

FINISHED = ("ok", "skipped")
"""Statuses a rerun keeps: the partition is not computed again."""


@dataclass(frozen=True)
class Column:
    """A results.nc variable holding one :class:`PartitionResult` field of the same name:
    its dtype, its value for a partition without a record, and its ``long_name``
    (``{refit}`` stands for the refit scorer)."""

    name: str
    dtype: Any
    missing: Any
    long_name: str


LEADING_COLUMNS = (
    Column("status", object, "pending", "ok, skipped, failed, or pending (not computed yet)"),
    Column(
        "reason",
        object,
        "not computed yet (the run stopped or this slice did not run)",
        "why a partition was skipped or failed",
    ),
    Column("best_score", np.float64, np.nan, "mean cross-validated {refit} of the best candidate"),
    Column("n_train", np.int64, 0, "valid rows used by the search (training period)"),
    Column("n_test", np.int64, 0, "valid rows of the test period"),
)
"""results.nc's first variables, before the best parameters and the scores."""

TRAILING_COLUMNS = (
    Column("fit_seconds", np.float64, np.nan, "wall seconds of the search, refit included"),
    Column("node", object, "", "host or scheduler node that computed the partition"),
)
"""results.nc's variables after the scores (``model_file`` follows them)."""


HALVING_COLUMNS = (
    Column("n_iterations", np.int64, 0, "iterations of the successive-halving search"),
    Column("n_candidates_last", np.int64, 0, "candidates left in its last iteration"),
    Column("n_resources_last", np.int64, 0, "resource of each candidate in its last iteration"),
)
"""results.nc's variables of a successive-halving search (``search.method: halving`` or
``halving-random``), after the test scores; from :attr:`PartitionResult.halving`."""


@dataclass
class PartitionResult:
    """The outcome of one partition's search: what a row of results.nc holds."""

    index: int
    status: str  # "ok" | "skipped" | "failed"
    reason: str = ""
    best_score: float = math.nan
    best_params: dict[str, Any] = field(default_factory=dict)
    cv_scores: dict[str, float] = field(default_factory=dict)
    test_scores: dict[str, Any] = field(default_factory=dict)
    """Each test-period metric: a number, or a list over the targets when ``data.target`` is a
    list (in its order)."""
    n_train: int = 0
    n_test: int = 0
    fit_seconds: float = math.nan
    node: str = ""
    model: bytes | None = field(default=None, repr=False)
    halving: dict[str, int] = field(default_factory=dict)
    """A halving search's iterations (:data:`HALVING_COLUMNS`); empty for other methods."""
    cv_results: dict[str, list[float]] = field(default_factory=dict, repr=False)
    """Every candidate's ``mean_test_<scorer>``, ``std_test_<scorer>`` and ``mean_fit_time``
    (scikit-learn's ``cv_results_`` keys, in candidate order; 7 significant digits), the rows of
    cv_results.nc; empty for a halving search and a partition that did not search."""

    def record(self) -> dict[str, Any]:
        """JSON-able form without the model bytes (``halving`` only for a halving search)."""
        extra: dict[str, Any] = {"halving": dict(self.halving)} if self.halving else {}
        if self.cv_results:
            extra["cv_results"] = {
                k: [_short(v) for v in values] for k, values in self.cv_results.items()
            }
        return {
            "index": self.index,
            "status": self.status,
            "reason": self.reason,
            "best_score": _finite_or_none(self.best_score),
            "best_params": {k: _plain(v) for k, v in self.best_params.items()},
            "cv_scores": {k: _finite_or_none(v) for k, v in self.cv_scores.items()},
            "test_scores": {k: _score_record(v) for k, v in self.test_scores.items()},
            "n_train": self.n_train,
            "n_test": self.n_test,
            "fit_seconds": _finite_or_none(self.fit_seconds),
            "node": self.node,
            **extra,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PartitionResult:
        """The result of a journal record (:meth:`record`'s form; missing numbers are NaN)."""

        def num(value: Any) -> float:
            return math.nan if value is None else float(value)

        return cls(
            index=int(record["index"]),
            status=record["status"],
            reason=record.get("reason", ""),
            best_score=num(record.get("best_score")),
            best_params=dict(record.get("best_params", {})),
            cv_scores={k: num(v) for k, v in record.get("cv_scores", {}).items()},
            test_scores={
                k: [num(x) for x in v] if isinstance(v, list) else num(v)
                for k, v in record.get("test_scores", {}).items()
            },
            n_train=int(record.get("n_train", 0)),
            n_test=int(record.get("n_test", 0)),
            fit_seconds=num(record.get("fit_seconds")),
            node=record.get("node", ""),
            halving={k: int(v) for k, v in record.get("halving", {}).items()},
            cv_results={
                k: [num(v) for v in values] for k, values in record.get("cv_results", {}).items()
            },
        )


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _score_record(value: Any) -> Any:
    """A test score (or a list of them, one per target) as JSON-able data."""
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    return _finite_or_none(value)


def _short(value: float) -> float | None:
    """A score with float32's precision (7 significant digits) for a small record; None for NaN."""
    value = float(value)
    return float(f"{value:.7g}") if math.isfinite(value) else None


def _plain(value: Any) -> Any:
    """A parameter value as JSON-able data (numpy scalars become Python numbers)."""
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)
