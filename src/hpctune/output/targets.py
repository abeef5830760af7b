"""results.nc's ``target`` dimension (``data.target`` a list): the test-period metrics per
target; with a single target (a string) results.nc is as it always was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..spec import DataSpec
from .record import PartitionResult

TARGET_DIM = "target"
"""The dim of the ``test_*`` variables when ``data.target`` is a list; its coordinate holds the
target names, in the spec's order."""


def test_column(
    metric: str, data: DataSpec
) -> tuple[tuple[str, ...], tuple[int, ...], Callable[[PartitionResult], Any]]:
    """``test_<metric>``'s dims after the partition's, their lengths, and the getter of a
    partition's value: ``()`` and a number for one target; ``("target",)``, ``(targets,)``
    and a row of numbers (NaN where none) for several."""
    if not data.multi_target:
        return (), (), lambda r: r.test_scores.get(metric, np.nan)
    n = len(data.targets)

    def row(result: PartitionResult) -> Any:
        scores = result.test_scores.get(metric)
        if not isinstance(scores, list) or len(scores) != n:
            return np.nan
        return [np.nan if s is None else s for s in scores]

    return (TARGET_DIM,), (n,), row


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
