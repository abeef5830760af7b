"""Successive halving (``search.method: halving`` / ``halving-random``): scikit-learn's
``HalvingGridSearchCV`` / ``HalvingRandomSearchCV`` for one partition, its check against the
estimator, its schedule (what ``validate`` and ``plan`` count) and what results.nc records of
its iterations.

dask-ml's own successive-halving searches need ``partial_fit`` and are broken on current dask,
so the search is scikit-learn's. It always runs with ``n_jobs=1``: a partition's search is one
task on one slot, like the dask-ml searches run with ``scheduler="sync"`` in a task; the
parallelism is across partitions. Its iterations depend on each other, so its fits cannot
become tasks of their own (``cluster.granularity: fit`` is refused for it).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SpecError
from ..spec import GRID_METHODS, HALVING_METHODS, HalvingSpec, SearchSpec


def is_halving(search: SearchSpec) -> bool:
    """Whether the spec's search is a successive-halving one."""
    return search.method in HALVING_METHODS


def settings(search: SearchSpec) -> HalvingSpec:
    """``search.halving``, or its defaults."""
    return search.halving or HalvingSpec()


def max_resources(halving: HalvingSpec, n_rows: int | None) -> int | None:
    """The most resource a candidate gets on a partition of ``n_rows`` training rows: the
    rows for ``auto`` (None when they are not known), else the spec's number."""
    if halving.max_resources != "auto":
        return int(halving.max_resources)
    if n_rows is None or n_rows < 1:
        return None
    return int(n_rows)


def min_resources(halving: HalvingSpec, most: int | None) -> int | str | None:
    """``min_resources`` as scikit-learn takes it: a share resolved on ``most`` (the
    partition's :func:`max_resources`), at least 1; None when a share's base is not known."""
    share = halving.min_resources
    if not isinstance(share, float):
        return share
    return None if most is None else max(1, math.floor(share * most))


def make_halving_search(
    search: SearchSpec,
    estimator: Any,
    cv: Any,
    space: dict[str, Any],
    n_candidates: int,
    n_rows: int | None,
) -> Any:
    """The scikit-learn halving search of one partition of ``n_rows`` training rows (single
    scorer, ``n_jobs=1``)."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401 - enables them
    from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV

    halving = settings(search)
    first = min_resources(halving, max_resources(halving, n_rows))
    if first is None:
        raise ValueError("search.halving.min_resources as a share needs the partition's rows")
    common: dict[str, Any] = {
        "factor": halving.factor,
        "resource": halving.resource,
        "min_resources": first,
        "max_resources": halving.max_resources,
        "aggressive_elimination": halving.aggressive_elimination,
        "cv": cv,
        "scoring": search.scoring[0],
        "refit": True,
        "error_score": "raise" if search.error_score == "raise" else np.nan,
        "return_train_score": False,
        "random_state": search.seed,
        "n_jobs": 1,
        "verbose": 0,
    }
    if search.method in GRID_METHODS:
        return HalvingGridSearchCV(estimator, space, **common)
    return HalvingRandomSearchCV(estimator, space, n_candidates=n_candidates, **common)


def check_resource(search: SearchSpec, estimator: Any) -> None:
    """A resource other than ``n_samples`` must be an integer parameter of the estimator."""
    if not is_halving(search):
        return
    resource = settings(search).resource
    if resource == "n_samples":
        return
    known = estimator.get_params(deep=True)
    if resource not in known:
        close = difflib.get_close_matches(resource, list(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise SpecError(
            "search.halving.resource",
            f"{resource!r} is neither n_samples nor a parameter of the estimator{hint}",
        )


# --------------------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class Schedule:
    """The iterations of a halving search: candidates and resource of each (scikit-learn's
    arithmetic), for a given number of candidates, folds and training rows."""

    candidates: tuple[int, ...]
    resources: tuple[int, ...]
    max_resources: int
    folds: int

    @property
    def fits(self) -> int:
        """Fits of the iterations (candidates x folds, summed), refit excluded."""
        return sum(self.candidates) * self.folds

    @property
    def full_fits(self) -> float:
        """The fits weighted by their share of ``max_resources``: the cost in full-size fits,
        for a fit whose cost grows in proportion to its resource."""
        weighted = sum(c * r for c, r in zip(self.candidates, self.resources, strict=True))
        return self.folds * weighted / self.max_resources

    def text(self, unit: str = "") -> str:
        """``48 x 3 folds at 55, 16 x 3 at 166, ...``: each iteration's candidates and resource."""
        steps = [
            f"{c} x {self.folds} at {r}{unit}"
            for c, r in zip(self.candidates, self.resources, strict=True)
        ]
        return ", ".join(steps)


def schedule(
    search: SearchSpec, n_candidates: int, folds: int, n_rows: int | None
) -> Schedule | None:
    """What scikit-learn's halving search will do on a partition of ``n_rows`` training rows
    (for ``resource: n_samples`` with ``max_resources: auto``; None when they are not known).
    An estimate: a classifier's
    ``smallest`` resource grows with its classes, not counted here."""
    halving = settings(search)
    most = max_resources(halving, n_rows)
    if most is None:
        return None
    factor = halving.factor
    smallest = 2 * folds if halving.resource == "n_samples" else 1
    given = min_resources(halving, most)
    minimum = given if isinstance(given, int) else smallest
    required = 1 + math.floor(math.log(n_candidates, factor))
    if given == "exhaust":
        minimum = max(minimum, int(most // factor ** (required - 1)))
    if minimum > most or minimum < 1:
        return None
    possible = 1 + math.floor(math.log(most // minimum, factor))
    iterations = required if halving.aggressive_elimination else min(possible, required)
    candidates, resources, left = [], [], n_candidates
    for itr in range(iterations):
        power = itr
        if halving.aggressive_elimination:
            power = max(0, itr - required + possible)
        resources.append(min(int(factor**power * minimum), most))
        candidates.append(left)
        left = math.ceil(left / factor)
    return Schedule(tuple(candidates), tuple(resources), most, folds)


# --------------------------------------------------------------------------- the record


def iterations(searcher: Any) -> dict[str, int]:
    """What results.nc records of a fitted halving search: its iterations, and the candidates
    and resource of its last one."""
    return {
        "n_iterations": int(searcher.n_iterations_),
        "n_candidates_last": int(searcher.n_candidates_[-1]),
        "n_resources_last": int(searcher.n_resources_[-1]),
    }


def halving_counts(
    search: SearchSpec, n_candidates: int, folds: int | None, rows: int | None
) -> dict[str, Any]:
    """``validate``'s and ``plan``'s count of a halving search on a partition of about ``rows``
    training rows: fits per partition (refit included), and each iteration's candidates and
    resource. An estimate: a partition's own rows decide its schedule."""
    plan = None if folds is None else schedule(search, n_candidates, folds, rows)
    if plan is None:
        return {"fits_per_partition": None, "iterations": None}
    unit = " rows" if settings(search).resource == "n_samples" else ""
    return {
        "fits_per_partition": plan.fits + 1,
        "full_size_fits": round(plan.full_fits + 1, 1),
        "iterations": [
            {"candidates": c, "resources": r}
            for c, r in zip(plan.candidates, plan.resources, strict=True)
        ],
        "rows": rows,
        "text": plan.text(unit),
    }


def plan_estimate(
    search: SearchSpec,
    n_candidates: int,
    folds: int | None,
    sample: list[dict[str, Any]],
    default_rows: int,
) -> dict[str, Any] | None:
    """``plan``'s count of a halving search (None for other methods): :func:`halving_counts`
    for the median training rows of the sampled partitions that finished ``ok`` (else
    ``default_rows``), with the line ``plan`` prints."""
    if not is_halving(search):
        return None
    rows_ok = [int(s["n_train"]) for s in sample if s.get("status") == "ok"]
    rows = int(np.median(rows_ok)) if rows_ok else default_rows
    counts = halving_counts(search, n_candidates, folds, rows)
    source = "the sample's median" if rows_ok else "every time step of the training period"
    if counts["iterations"] is None:
        counts["line"] = (
            f"halving         fits per partition unknown for {rows} training rows ({source})"
        )
        return counts
    counts["line"] = (
        f"halving         an estimate: {counts['text']} + refit = about "
        f"{counts['fits_per_partition']} fits per partition, {counts['full_size_fits']} in "
        f"full-size fits (a full search: {n_candidates * folds + 1}), for {rows} training rows "
        f"({source}); each partition's own rows decide its iterations"
    )
    return counts
