"""Partitions that ``data.where`` leaves out: recorded ``skipped`` with that reason by the
driver, never read nor sent to a worker, so that results.nc keeps every cell of the grid."""

from __future__ import annotations

import numpy as np

from ..data.partitions import Partitioning
from ..data.where import OUTSIDE_REASON
from ..output.folder import Store
from ..output.journal import Journal
from ..output.record import PartitionResult
from ..progress import Counts


def skip_outside(store: Store, plan: Partitioning, todo: np.ndarray, counts: Counts) -> np.ndarray:
    """Record the partitions of ``todo`` outside ``data.where`` as skipped (counted in
    ``counts``); the partitions left to compute."""
    outside = plan.outside_mask[todo]
    if not outside.any():
        return todo
    journal = Journal(store.parts)
    try:
        for index in todo[outside]:
            result = PartitionResult(index=int(index), status="skipped", reason=OUTSIDE_REASON)
            journal.append(result.record())
            counts.add("skipped")
    finally:
        journal.close()
    return todo[~outside]
