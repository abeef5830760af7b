"""Which partition a place belongs to: the cell nearest to given coordinates (``lat=48.2,
lon=16.4``), and the partition that trained it (the cell's own, or its group's).

Users think in latitude and longitude, the results in partitions. The cell is the nearest by
great-circle distance when the coordinates are a latitude and a longitude (recognised as the
report recognises them: name, ``standard_name`` or units), else by Euclidean distance in the
coordinates' own units. A place farther from its nearest cell than the grid's spacing allows
(more than 1.5 steps of a coordinate's distinct values away, along any coordinate) lies outside
the grid: refused, with the nearest cell and its distance named, rather than answered with a
model trained elsewhere. Only metadata and the coordinates are read (and the group variable of a
grouped run)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.inspect import is_latitude, is_longitude, space_coordinates
from ..data.partitions import cell_groups, dataset_partitioning
from ..data.source import open_dataset
from ..errors import UsageError
from ..spec import Job

EARTH_RADIUS_KM = 6371.0
STEPS_AWAY = 1.5
"""How many of a coordinate's grid steps a place may lie from its nearest cell."""


@dataclass(frozen=True)
class Location:
    """The cell nearest to a place, and the partition whose model serves it."""

    partition: int
    cell: int
    """The cell's index, the space dims flattened in C order."""
    coords: dict[str, float]
    """The cell's own coordinates."""
    distance: float
    """From the place to the cell: km for latitude/longitude, else the coordinates' units."""
    unit: str


def locate(job: Job, coords: Mapping[str, float]) -> Location:
    """The cell of ``job``'s training data nearest to ``coords`` and its partition."""
    if not coords:
        raise UsageError("give a partition number or coordinates (e.g. lat=48.2, lon=16.4)")
    ds = open_dataset(job.data)
    try:
        space = tuple(job.data.space)
        found = space_coordinates(ds, space)
        for name in coords:
            if name not in found:
                raise UsageError(
                    f"{name}: no coordinate of that name along {', '.join(space)} "
                    f"(there: {', '.join(sorted(found)) or 'none'})"
                )
        values = {name: np.asarray(found[name][0], dtype=np.float64) for name in coords}
        kinds = {name: _kind(name, found[name][1]) for name in coords}
        target = {name: float(value) for name, value in coords.items()}
        distance, unit = _distances(values, kinds, target)
        cell = int(np.nanargmin(distance))
        nearest = {name: float(v[cell]) for name, v in values.items()}
        for name, v in values.items():
            step = _grid_step(v)
            offset = abs(target[name] - nearest[name])
            if kinds[name] == "lon":
                offset = min(offset, 360.0 - offset % 360.0)
            if offset > STEPS_AWAY * step:
                where = ", ".join(f"{k}={x:g}" for k, x in nearest.items())
                raise UsageError(
                    f"no cell near {_text(target)}: the nearest ({where}) is "
                    f"{distance[cell]:.4g} {unit} away, {offset:g} along {name} where its "
                    f"cells lie {step:g} apart"
                )
        groups = dataset_partitioning(job, ds)
        if groups.grouped:
            rows = cell_groups(groups, groups.labels)
            partition = int(rows[cell])
            if partition < 0:
                raise UsageError(f"the cell nearest {_text(target)} is in no partition")
        else:
            partition = cell
    finally:
        ds.close()
    return Location(partition, cell, nearest, float(distance[cell]), unit)


def _kind(name: str, attrs: dict[str, Any]) -> str:
    if is_latitude(name, attrs):
        return "lat"
    return "lon" if is_longitude(name, attrs) else ""


def _distances(
    values: dict[str, np.ndarray], kinds: dict[str, str], target: dict[str, float]
) -> tuple[np.ndarray, str]:
    lat = next((n for n, kind in kinds.items() if kind == "lat"), None)
    lon = next((n for n, kind in kinds.items() if kind == "lon"), None)
    if lat is not None and lon is not None and len(values) == 2:
        phi1, phi2 = np.radians(target[lat]), np.radians(values[lat])
        dphi = phi2 - phi1
        dlmb = np.radians(values[lon] - target[lon])
        h = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
        return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), "km"
    squares = sum((v - target[n]) ** 2 for n, v in values.items())
    return np.sqrt(squares), "(coordinate units)"


def _grid_step(values: np.ndarray) -> float:
    """The median step between a coordinate's distinct values (infinite for a single one)."""
    distinct = np.unique(values[np.isfinite(values)])
    if distinct.size < 2:
        return math.inf
    return float(np.median(np.diff(distinct)))


def _text(coords: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in coords.items())
