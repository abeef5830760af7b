"""The score surface of a search: every candidate's cross-validated scores, as recorded per
partition and written to cv_results.nc.

A grid search tries the same candidates, in the same order, on every partition, and a random
search draws them from ``search.seed``, so the candidates are the same for every partition too:
a partition's record holds its scores alone, and :func:`surface_candidates` gives the parameter
values once for the whole file. A successive-halving search keeps a different subset of
candidates in each iteration of each partition: it has no common surface and records none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec import SearchSpec
from .estimator import candidates
from .halving import is_halving


def score_arrays(cv_results: dict[str, Any], scoring: list[str]) -> dict[str, list[float]]:
    """``mean_test_<scorer>``, ``std_test_<scorer>`` per scorer and ``mean_fit_time`` of a
    search's ``cv_results_`` (a single scorer's keys end in ``_score`` there), as float lists."""
    arrays: dict[str, list[float]] = {}
    for scorer in scoring:
        key = scorer if len(scoring) > 1 else "score"
        for stat in ("mean", "std"):
            values = np.asarray(cv_results[f"{stat}_test_{key}"], dtype=np.float64)
            arrays[f"{stat}_test_{scorer}"] = values.tolist()
    arrays["mean_fit_time"] = np.asarray(cv_results["mean_fit_time"], np.float64).tolist()
    return arrays


def surface_candidates(search: SearchSpec) -> list[dict[str, Any]] | None:
    """The candidates every partition tries, in ``cv_results_`` order; None for a halving
    search (no common surface: cv_results.nc is not written)."""
    if is_halving(search):
        return None
    return candidates(search)
