"""Partitions: which cells each search sees.

``partition.by: cell`` gives one partition per cell (partition ``i`` is cell ``i`` of the space
dims flattened in C order). ``partition.by: <variable>`` gives one partition per distinct value of
that variable along space, with the rows of all its cells (MOTrainer's identifier split).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from ..spec import Job
from .source import open_dataset

SLICE_PATTERN = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Partitioning:
    """Which cells each partition holds: cell ``i`` alone (``by: cell``), or the cells of
    each value of a group variable (``members``, in the order of the sorted ``labels``)."""

    by: str
    n_cells: int
    labels: np.ndarray | None = None
    """The variable's value of each partition (group plans only), sorted."""
    members: tuple[np.ndarray, ...] | None = None
    """The cells of each partition (group plans only; inside ``data.where`` where set)."""
    inside: np.ndarray | None = None
    """The cells ``data.where`` selects (None: every cell)."""

    @property
    def grouped(self) -> bool:
        """Whether partitions are groups of cells (``partition.by`` names a variable)."""
        return self.members is not None

    @property
    def size(self) -> int:
        """The number of partitions."""
        return self.n_cells if self.members is None else len(self.members)

    def cells(self, index: int) -> np.ndarray:
        """The (flattened) cells of partition ``index``."""
        if self.members is None:
            return np.array([index], dtype=np.int64)
        return self.members[index]

    def outside(self, index: int) -> bool:
        """Whether ``data.where`` leaves partition ``index`` out (:attr:`outside_mask`)."""
        return bool(self.outside_mask[index])

    @functools.cached_property
    def outside_mask(self) -> np.ndarray:
        """Per partition, whether ``data.where`` leaves it out: its cell is outside, or every
        cell of its group is. Computed once, for the driver's loops over every partition."""
        if self.members is not None:
            return np.array([m.size == 0 for m in self.members], dtype=bool)
        if self.inside is None:
            return np.zeros(self.n_cells, dtype=bool)
        return ~np.asarray(self.inside, dtype=bool)

    def n_cells_of(self, index: int) -> int:
        """How many cells partition ``index`` holds."""
        return 1 if self.members is None else int(self.members[index].size)

    def model_name(self, index: int) -> str:
        """The ``models/`` file name of partition ``index``."""
        return model_file_name(index, self.size)


def model_file_name(index: int, size: int) -> str:
    """``models/`` file of partition ``index`` of ``size``: zero-padded, so names sort."""
    width = max(1, len(str(size - 1)))
    return f"{index:0{width}d}.skops"


def partitioning(
    by: str,
    n_cells: int,
    ds: Any = None,
    space_dims: tuple[str, ...] = (),
    inside: np.ndarray | None = None,
) -> Partitioning:
    """The partitions of ``n_cells`` cells: one per cell, or one per value of the variable
    ``by`` of ``ds`` (cells where it is missing, NaN or empty belong to none). With
    ``inside`` (``data.where``), a group holds only its cells inside; the groups stay those
    of every cell, so that results keep their layout."""
    if by == "cell":
        return Partitioning(by=by, n_cells=n_cells, inside=inside)
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
    if inside is not None:
        members = tuple(m[inside[m]] for m in members)
    return Partitioning(by=by, n_cells=n_cells, labels=labels, members=members, inside=inside)


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


def dataset_partitioning(job: Job, ds: Any) -> Partitioning:
    """The partitions of ``job`` over the open dataset ``ds`` (its space dims' cells)."""
    space = tuple(job.data.space)
    n_cells = int(np.prod([ds.sizes[d] for d in space]))
    return partitioning(job.partition.by, n_cells, ds, space)


def training_partitioning(job: Job) -> Partitioning:
    """The partitions of ``job``'s training data, read from its files (metadata and the
    group variable only): what the results' rows are, for those that map cells to them."""
    ds = open_dataset(job.data)
    try:
        return dataset_partitioning(job, ds)
    finally:
        ds.close()


def cell_groups(groups: Partitioning, labels: Any, n_cells: int | None = None) -> np.ndarray:
    """The position in ``labels`` of each cell's group, -1 for a cell in no group or in a
    group whose label ``labels`` lacks. ``groups`` is a grouped partitioning; ``labels`` the
    group labels of the results (or of another partitioning) to map the cells onto."""
    position = {_key(value): i for i, value in enumerate(labels)}
    rows = np.full(groups.n_cells if n_cells is None else n_cells, -1, dtype=np.int64)
    for label, members in zip(groups.labels, groups.members or (), strict=True):
        rows[members] = position.get(_key(label), -1)
    return rows


def _key(value: Any) -> Any:
    """A label as a dict key: numpy scalars as Python values, so 3 and np.int64(3) match."""
    return value.item() if isinstance(value, np.generic) else value


PartitionPlan = Partitioning
make_plan = partitioning
