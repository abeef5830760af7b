"""``data.where``: which cells of the data are trained, read from a mask variable on the space
dims or from a box over coordinates along space (metadata and that one variable only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..spec import DataSpec
from .inspect import listing, space_coordinates

OUTSIDE_REASON = "outside data.where"
"""The reason results.nc gives for a partition that ``data.where`` leaves out."""


def where_mask(data: DataSpec, ds: Any) -> np.ndarray | None:
    """Which cells (flattened in C order of the space dims) ``data.where`` selects; None
    without ``data.where``. A selection of no cell is refused."""
    if data.where is None:
        return None
    space = tuple(data.space)
    if isinstance(data.where, str):
        inside = _mask_variable(ds, data.where, space)
    else:
        inside = _box(ds, data.where, space)
    if not inside.any():
        raise DataError("data.where", f"selects none of the {inside.size} cells of the data")
    return inside


def _mask_variable(ds: Any, name: str, space: tuple[str, ...]) -> np.ndarray:
    if name not in ds.variables:
        raise DataError(
            "data.where",
            f"no variable {name!r} in the data (a mask on {', '.join(space)}, or a box "
            f"{{coordinate: [low, high]}}); variables: {listing(ds.data_vars)}",
        )
    var = ds[name]
    if set(var.dims) != set(space):
        raise DataError(
            "data.where",
            f"variable {name!r} has dims ({', '.join(map(str, var.dims))}); "
            f"expected the space dims ({', '.join(space)})",
        )
    values = np.asarray(var.transpose(*space).values).reshape(-1)
    if values.dtype.kind == "b":
        return values.astype(bool)
    if values.dtype.kind not in "iuf":
        raise DataError(
            "data.where", f"variable {name!r} has dtype {values.dtype}; give a boolean or 0/1 mask"
        )
    known = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    other = known[(known != 0) & (known != 1)]
    if other.size:
        raise DataError(
            "data.where",
            f"variable {name!r} holds values other than 0 and 1 (e.g. {other[0]:g}); "
            "give a boolean or 0/1 mask",
        )
    return values == 1


def _box(ds: Any, box: dict[str, list[float]], space: tuple[str, ...]) -> np.ndarray:
    coords = space_coordinates(ds, space)
    inside = np.ones(int(np.prod([ds.sizes[d] for d in space])), dtype=bool)
    for name, (low, high) in box.items():
        if name not in coords:
            raise DataError(
                f"data.where.{name}",
                f"no coordinate {name!r} along the space dims; coordinates: {listing(coords)}",
            )
        values = coords[name][0]
        if values.dtype.kind not in "iuf":
            raise DataError(
                f"data.where.{name}", f"coordinate {name!r} has dtype {values.dtype}; not numbers"
            )
        inside &= (values >= low) & (values <= high)
    return inside
