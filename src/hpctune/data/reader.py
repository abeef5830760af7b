"""Read the whole time series of a few cells, on a worker, from the dataset it keeps open."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..spec import DataSpec
from .inspect import DatasetInfo
from .source import open_cached


@dataclass
class CellBlock:
    """The rows of a few cells: inputs ``x`` (cells, time, inputs) and ``y`` (cells, time), or
    (cells, time, targets) when ``data.target`` is a list."""

    cells: np.ndarray
    x: np.ndarray
    y: np.ndarray


READ_AHEAD_BYTES = 8 * 2**20
"""Small requests read the window of neighbouring cells around them, up to this size."""


class CellReader:
    """Reads whole time series of given cells; one per worker process and spec.

    Each read costs about 20 ms whatever its size (xarray and dask build and run a graph over
    every file and variable), as much as a cheap search. A request for fewer cells than a
    window (about ``READ_AHEAD_BYTES`` of cells, at most ``data.chunk``, within one row of the
    grid) therefore reads the whole window once and answers the next requests inside it from
    memory: tasks are handed out in cell order, so a worker's next partitions are neighbours.
    """

    def __init__(self, data: DataSpec, info: DatasetInfo) -> None:
        self.data = data
        self.info = info
        self._window: tuple[int, int] | None = None
        self._block: CellBlock | None = None
        itemsize = sum(np.dtype(d).itemsize for d in info.variables.values())
        per_cell = max(1, itemsize * len(info.times))
        self.window_cells = max(1, min(data.chunk, READ_AHEAD_BYTES // per_cell))

    @cached_property
    def dataset(self) -> Any:
        """The spec's dataset, opened once per process (:func:`open_cached`)."""
        return open_cached(self.data, self.info.paths, chunk_bytes=self.info.chunk_bytes)

    def read(self, cells: np.ndarray) -> CellBlock:
        """Read the given (flattened) cell indices; rows keep the order of ``cells``."""
        cells = np.asarray(cells, dtype=np.int64)
        window = self.window_of(cells)
        if window is None:
            return self._read(cells)
        if window != self._window or self._block is None:
            self._block = None  # the old window goes before the new one is read
            self._block = self._read(np.arange(*window, dtype=np.int64))
            self._window = window
        rows = cells - window[0]
        return CellBlock(cells=cells, x=self._block.x[rows], y=self._block.y[rows])

    def window_of(self, cells: np.ndarray) -> tuple[int, int] | None:
        """The window of cells to read for ``cells``, or None to read just them."""
        span = self.window_cells
        if cells.size == 0 or cells.size >= span:
            return None
        first, last = int(cells.min()), int(cells.max())
        row = self.info.space_shape[-1]
        row_start = first // row * row
        start = row_start + (first - row_start) // span * span
        stop = min(start + span, row_start + row)
        return (start, stop) if last < stop else None

    def _read(self, cells: np.ndarray) -> CellBlock:
        import dask

        space = self.info.space_dims
        multi = np.unravel_index(cells, self.info.space_shape)
        indexers: dict[str, Any] = {}
        local: list[np.ndarray] = []
        for dim, positions in zip(space, multi, strict=True):
            unique, inverse = np.unique(positions, return_inverse=True)
            contiguous = unique[-1] - unique[0] + 1 == unique.size
            indexers[dim] = slice(int(unique[0]), int(unique[-1]) + 1) if contiguous else unique
            local.append(inverse.reshape(-1))
        names = [*self.data.inputs, *self.data.targets]
        subset = self.dataset[names].isel(indexers)
        with dask.config.set(scheduler="sync"):
            subset = subset.compute()
        sub_shape = tuple(subset.sizes[d] for d in space)
        rows = np.ravel_multi_index(tuple(local), sub_shape)
        order = self.info.time_order

        def series(name: str) -> np.ndarray:
            values = subset[name].transpose(*space, self.info.time_dim).values
            values = values.reshape(-1, values.shape[-1])[rows]
            return values[:, order] if order is not None else values

        x = np.stack([series(name) for name in self.data.inputs], axis=-1)
        if self.data.multi_target:
            y = np.stack([series(name) for name in self.data.targets], axis=-1)
        else:
            y = series(self.data.target)
        return CellBlock(cells=cells, x=x, y=y)
