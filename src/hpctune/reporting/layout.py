"""Where each cell of a results.nc is drawn: from results.nc's own coordinates (one partition
per cell) or, for grouped partitions, from the training data's coordinates and group variable
(metadata only). Latitude and longitude are recognised by name, ``standard_name`` or units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.inspect import is_latitude, is_longitude, space_coordinates
from ..data.partitions import cell_groups, dataset_partitioning
from ..data.source import open_dataset
from ..output.grid import rows as result_rows
from ..spec import Job


@dataclass
class CellLayout:
    """Where each cell is drawn, and which results row it takes its value from."""

    x: np.ndarray | None
    y: np.ndarray | None
    x_label: str
    y_label: str
    geographic: bool
    row_of_cell: np.ndarray
    """Results row (partition) of each cell; -1 for a cell no partition holds."""
    grid_shape: tuple[int, int] | None = None
    """(ny, nx) when the cells are a full grid in C order: drawn as an image."""
    unit: str = "cell"

    @property
    def n_cells(self) -> int:
        """The cells drawn (a grouped layout draws every cell of the data)."""
        return int(self.row_of_cell.size)


def _pick_axes(
    coords: dict[str, tuple[np.ndarray, dict[str, Any]]],
) -> tuple[str, str, bool] | None:
    """(x name, y name, geographic) from the cells' coordinates, or None."""
    numeric = {
        name: attrs
        for name, (values, attrs) in coords.items()
        if np.issubdtype(np.asarray(values).dtype, np.number)
    }
    lat = next((n for n, a in numeric.items() if is_latitude(n, a)), None)
    lon = next((n for n, a in numeric.items() if is_longitude(n, a) and n != lat), None)
    if lat and lon:
        return lon, lat, True
    lowered = {n.lower(): n for n in numeric}
    if "x" in lowered and "y" in lowered:
        return lowered["x"], lowered["y"], False
    return None


def _grid_shape(
    x: np.ndarray, y: np.ndarray, space_sizes: list[int] | None
) -> tuple[int, int] | None:
    """(ny, nx) if the cells are a full y-by-x grid flattened in C order (or x-by-y)."""
    if not space_sizes or len(space_sizes) != 2:
        return None
    ny, nx = space_sizes
    if ny * nx != x.size or ny < 2 or nx < 2:
        return None
    xs, ys = x.reshape(ny, nx), y.reshape(ny, nx)
    if np.allclose(xs, xs[:1], equal_nan=True) and np.allclose(ys, ys[:, :1], equal_nan=True):
        return ny, nx
    return None


def cell_layout(job: Job, results: Any, manifest: dict[str, Any]) -> CellLayout:
    """The layout of the results' cells: from results.nc itself (one partition per cell) or,
    for grouped partitions, from the data's coordinates and group variable (metadata only).
    A results.nc on the input's grid is taken as its rows (:func:`hpctune.output.grid.rows`)."""
    results = result_rows(results)
    sizes = list((manifest.get("data") or {}).get("space", {}).values()) or None
    if "space" in results.dims:
        n = int(results.sizes["space"])
        coords = {
            str(name): (np.asarray(var.values), dict(var.attrs))
            for name, var in results.coords.items()
            if var.dims == ("space",)
        }
        rows = np.arange(n)
        unit = "cell"
    else:
        coords, rows = _group_cells(job, results)
        n = rows.size
        unit = "partition"
    picked = _pick_axes(coords) if coords else None
    if picked is None:
        return CellLayout(None, None, "cell index", "", False, rows, unit=unit)
    xname, yname, geographic = picked
    x = np.asarray(coords[xname][0], dtype=float)
    y = np.asarray(coords[yname][0], dtype=float)
    if geographic:
        x = np.where(x > 180, x - 360, x)
    x_label = "longitude (°E)" if geographic else _label(xname, coords[xname][1])
    y_label = "latitude (°N)" if geographic else _label(yname, coords[yname][1])
    return CellLayout(x, y, x_label, y_label, geographic, rows, _grid_shape(x, y, sizes), unit)


def _label(name: str, attrs: dict[str, Any]) -> str:
    units = attrs.get("units")
    return f"{name} ({units})" if units else name


def _group_cells(
    job: Job, results: Any
) -> tuple[dict[str, tuple[np.ndarray, dict[str, Any]]], np.ndarray]:
    """Coordinates of every cell and the results row of its group (-1: in no group)."""
    try:
        ds = open_dataset(job.data)
    except Exception:  # the data moved: draw the groups against their index instead
        labels = results[next(iter(results.dims))].values
        return {}, np.arange(len(labels))
    try:
        groups = dataset_partitioning(job, ds)
        coords = space_coordinates(ds, tuple(job.data.space))
    finally:
        ds.close()
    return coords, cell_groups(groups, list(results["partition"].values))
