"""results.nc's ``target`` dimension (``data.target`` a list): the test-period metrics per
target; with a single target (a string) results.nc is as it always was."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec import DataSpec
from .record import PartitionResult

TARGET_DIM = "target"
"""The dim of the ``test_*`` variables when ``data.target`` is a list; its coordinate holds the
target names, in the spec's order."""


def test_column(
    results: list[PartitionResult | None], metric: str, data: DataSpec
) -> tuple[tuple[str, ...], np.ndarray]:
    """``test_<metric>``'s extra dims and values, one row per partition (NaN where none):
    ``()`` and (partitions,) for one target, ``("target",)`` and (partitions, targets) for
    several."""
    if not data.multi_target:
        values = [np.nan if r is None else r.test_scores.get(metric, np.nan) for r in results]
        return (), np.array(values, dtype=np.float64)
    n = len(data.targets)
    out = np.full((len(results), n), np.nan, dtype=np.float64)
    for row, result in enumerate(results):
        scores = None if result is None else result.test_scores.get(metric)
        if isinstance(scores, list) and len(scores) == n:
            out[row] = [np.nan if s is None else s for s in scores]
    return (TARGET_DIM,), out


test_column.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def describe_targets(ds: Any, data: DataSpec, multi_output: str | None) -> None:
    """The ``target`` coordinate and the attributes saying how one model predicts every target
    (``hpctune_multi_output``: ``native``, or ``MultiOutputRegressor`` for an estimator wrapped
    in it); nothing for a single target."""
    if not data.multi_target:
        return
    ds.coords[TARGET_DIM] = (TARGET_DIM, np.array(data.targets, dtype=object))
    ds[TARGET_DIM].attrs["long_name"] = "target variable (data.target)"
    ds.attrs["hpctune_targets"] = " ".join(data.targets)
    ds.attrs["hpctune_multi_output"] = multi_output or "native"
