"""``data.where``: which cells of the data are trained, read from a mask variable on the space
dims or from a box over coordinates along space (metadata and that one variable only); and
``hpctune predict --where``, the same forms selecting the cells predicted."""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml

from ..errors import DataError
from ..spec import DataSpec
from ..spec.subset import check_where
from .inspect import listing, space_coordinates

OUTSIDE_REASON = "outside data.where"
"""The reason results.nc gives for a partition that ``data.where`` leaves out."""


def where_mask(data: DataSpec, ds: Any) -> np.ndarray | None:
    """Which cells (flattened in C order of the space dims) ``data.where`` selects; None
    without ``data.where``. A selection of no cell is refused."""
    if data.where is None:
        return None
    return cells_where(data.where, ds, tuple(data.space))


def cells_where(
    where: str | dict[str, list[float]], ds: Any, space: tuple[str, ...], key: str = "data.where"
) -> np.ndarray:
    """Which cells of ``ds`` (flattened in C order of ``space``) the mask variable or box
    ``where`` selects; errors name ``key``. A selection of no cell is refused."""
    if isinstance(where, str):
        inside = _mask_variable(ds, where, space, key)
    else:
        inside = _box(ds, where, space, key)
    if not inside.any():
        raise DataError(key, f"selects none of the {inside.size} cells of the data")
    return inside


def parse_where(value: Any, key: str = "--where") -> str | dict[str, list[float]]:
    """A selection given on the command line or to the API: a mask variable's name, or a box
    as YAML text (``{lat: [40, 50], lon: [0, 10]}``) or a mapping; checked as ``data.where``."""
    if isinstance(value, str) and ":" in value:  # a box, as YAML
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise DataError(key, f"cannot read {value!r}: give {BOX_EXAMPLE}") from None
    try:
        checked = check_where(value)
    except ValueError as exc:
        raise DataError(key, str(exc)) from None
    if checked is None:
        raise DataError(key, f"give a mask variable's name or a box such as {BOX_EXAMPLE}")
    return checked


BOX_EXAMPLE = "'{lat: [40, 50], lon: [0, 10]}'"


def cell_partitions_inside(cell_partition: np.ndarray | None, inside: np.ndarray) -> np.ndarray:
    """The partition of each cell (``cell_partition``; None: cell i is partition i), -1 for
    the cells that ``inside`` leaves out."""
    partitions = (
        np.arange(inside.size, dtype=np.int64)
        if cell_partition is None
        else np.array(cell_partition, dtype=np.int64)
    )
    partitions[~inside] = -1
    return partitions


def _mask_variable(ds: Any, name: str, space: tuple[str, ...], key: str) -> np.ndarray:
    if name not in ds.variables:
        raise DataError(
            key,
            f"no variable {name!r} in the data (a mask on {', '.join(space)}, or a box "
            f"{{coordinate: [low, high]}}); variables: {listing(ds.data_vars)}",
        )
    var = ds[name]
    if set(var.dims) != set(space):
        raise DataError(
            key,
            f"variable {name!r} has dims ({', '.join(map(str, var.dims))}); "
            f"expected the space dims ({', '.join(space)})",
        )
    values = np.asarray(var.transpose(*space).values).reshape(-1)
    if values.dtype.kind == "b":
        return values.astype(bool)
    if values.dtype.kind not in "iuf":
        raise DataError(
            key, f"variable {name!r} has dtype {values.dtype}; give a boolean or 0/1 mask"
        )
    known = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    other = known[(known != 0) & (known != 1)]
    if other.size:
        raise DataError(
            key,
            f"variable {name!r} holds values other than 0 and 1 (e.g. {other[0]:g}); "
            "give a boolean or 0/1 mask",
        )
    return values == 1


def _box(ds: Any, box: dict[str, list[float]], space: tuple[str, ...], key: str) -> np.ndarray:
    coords = space_coordinates(ds, space)
    inside = np.ones(int(np.prod([ds.sizes[d] for d in space])), dtype=bool)
    for name, (low, high) in box.items():
        if name not in coords:
            raise DataError(
                f"{key}.{name}",
                f"no coordinate {name!r} along the space dims; coordinates: {listing(coords)}",
            )
        values = coords[name][0]
        if values.dtype.kind not in "iuf":
            raise DataError(
                f"{key}.{name}", f"coordinate {name!r} has dtype {values.dtype}; not numbers"
            )
        inside &= (values >= low) & (values <= high)
    return inside
