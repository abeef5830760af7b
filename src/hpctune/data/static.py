"""Static inputs: input variables on the space dims alone, with no time dimension (elevation,
soil type, a land fraction). Each is broadcast over time: every time step of a cell has the
cell's value, in training (:class:`~hpctune.data.reader.CellReader`) and in ``predict`` alike.

A model of one cell (``partition.by: cell``) therefore sees a static input as a constant
column. It is kept, so that every model takes the inputs of ``data.inputs`` in their order
(``hpctune.load_model(...).predict(x)`` with the same columns whatever the partitioning); it
cannot learn from it (a scaler maps it to 0, a linear model gives it no weight, a tree never
splits on it). A model of a group of cells (``partition.by: <variable>``) pools cells whose
values differ, and learns from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def is_static(dims: Sequence[Any], space: Sequence[str]) -> bool:
    """Whether a variable with ``dims`` is a static input: exactly the space dims, no time."""
    return len(dims) == len(space) and set(map(str, dims)) == set(space)


def input_rows(
    subset: Any,
    names: Sequence[str],
    space: Sequence[str],
    time_dim: str,
    n_time: int,
    rows: np.ndarray | None = None,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """The inputs ``names`` of the loaded dataset ``subset`` as an array (cells, time,
    inputs), cells in C order of ``space`` (``rows`` of them where given), time steps in the
    file's order (``order`` of them where given); a static input repeats its cell's value at
    every time step."""

    def series(name: str) -> np.ndarray:
        var = subset[name]
        if time_dim not in var.dims:
            values = np.asarray(var.transpose(*space).values).reshape(-1, 1)
            values = values if rows is None else values[rows]
            return np.broadcast_to(values, (values.shape[0], n_time))
        values = var.transpose(*space, time_dim).values
        values = values.reshape(-1, values.shape[-1])
        values = values if rows is None else values[rows]
        return values[:, order] if order is not None else values

    return np.stack([series(name) for name in names], axis=-1)


def static_note(static: Sequence[str], by: str) -> str:
    """What ``validate`` says of the static inputs, for partitions ``by``."""
    names = ", ".join(static)
    if by == "cell":
        return (
            f"{names} (no time dim: broadcast over time; constant within a cell, so each "
            "cell's model keeps it as a column it cannot learn from; partition.by a variable "
            "pools cells that differ)"
        )
    return f"{names} (no time dim: broadcast over time; each {by} model learns from its cells)"
