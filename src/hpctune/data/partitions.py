"""Partitions: which cells each search sees.

``partition.by: cell`` gives one partition per cell (partition ``i`` is cell ``i`` of the space
dims flattened in C order). ``partition.by: <variable>`` gives one partition per distinct value of
that variable along space, with the rows of all its cells (MOTrainer's identifier split).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError

SLICE_PATTERN = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class PartitionPlan:
    by: str
    n_cells: int
    labels: np.ndarray | None = None
    """The variable's value of each partition (group plans only), sorted."""
    members: tuple[np.ndarray, ...] | None = None
    """The cells of each partition (group plans only)."""

    @property
    def grouped(self) -> bool:
        return self.members is not None

    @property
    def size(self) -> int:
        return self.n_cells if self.members is None else len(self.members)

    def cells(self, index: int) -> np.ndarray:
        if self.members is None:
            return np.array([index], dtype=np.int64)
        return self.members[index]

    def n_cells_of(self, index: int) -> int:
        return 1 if self.members is None else int(self.members[index].size)

    def model_name(self, index: int) -> str:
        return model_file_name(index, self.size)


def model_file_name(index: int, size: int) -> str:
    """``models/`` file of partition ``index`` of ``size``: zero-padded, so names sort."""
    width = max(1, len(str(size - 1)))
    return f"{index:0{width}d}.skops"


def make_plan(
    by: str, n_cells: int, ds: Any = None, space_dims: tuple[str, ...] = ()
) -> PartitionPlan:
    if by == "cell":
        return PartitionPlan(by=by, n_cells=n_cells)
    values = np.asarray(ds[by].transpose(*space_dims).values).reshape(-1)
    if values.dtype.kind == "f":
        assigned = np.isfinite(values)
    elif values.dtype.kind in "OUS":
        assigned = np.array([v is not None and v == v and str(v) != "" for v in values])
    else:
        assigned = np.ones(values.shape, dtype=bool)
    cells = np.flatnonzero(assigned)
    labels, inverse = np.unique(values[cells], return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(labels.size + 1))
    members = tuple(cells[order[bounds[i] : bounds[i + 1]]] for i in range(labels.size))
    return PartitionPlan(by=by, n_cells=n_cells, labels=labels, members=members)


def parse_slice(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` (0 <= i < N) -> ``(i, N)``."""
    if text is None:
        return None
    match = SLICE_PATTERN.match(text.strip())
    if not match:
        raise UsageError(f"--slice must look like i/N, e.g. 0/4; got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise UsageError(f"--slice {text}: need 0 <= i < N")
    return index, count


def slice_indices(size: int, part: tuple[int, int] | None) -> np.ndarray:
    """The partitions of slice ``i`` of ``N``: a contiguous block, so reads stay local."""
    if part is None:
        return np.arange(size, dtype=np.int64)
    index, count = part
    return np.arange(index * size // count, (index + 1) * size // count, dtype=np.int64)
