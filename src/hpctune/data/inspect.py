"""Check the data against the spec, reading metadata only: the one data check of ``run``,
``validate``, ``plan``, ``submit``, ``merge``, ``predict`` and ``report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError
from ..spec import DataSpec, Job
from .periods import check_periods
from .source import open_dataset, resolve_paths


@dataclass(frozen=True)
class DatasetInfo:
    """What the driver knows about the data: metadata only, small enough to send anywhere."""

    paths: tuple[str, ...]
    space_dims: tuple[str, ...]
    space_shape: tuple[int, ...]
    time_dim: str
    times: np.ndarray = field(repr=False)
    """The time axis, sorted (datetime64 when the file's time is a date)."""
    time_order: np.ndarray | None = field(repr=False)
    """Permutation that sorts the file's time axis, or None when it is already sorted."""
    variables: dict[str, str]
    """Name -> dtype of every variable the search reads."""
    chunk: int
    chunk_bytes: int = 0
    """The largest HDF5 chunk of the variables read (0: not chunked, or unknown)."""

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.space_shape))

    @property
    def n_time(self) -> int:
        return int(self.times.size)

    @property
    def is_datetime(self) -> bool:
        return np.issubdtype(self.times.dtype, np.datetime64)

    def summary(self) -> dict[str, Any]:
        first = str(self.times[0]) if self.n_time else None
        last = str(self.times[-1]) if self.n_time else None
        return {
            "files": len(self.paths),
            "space": dict(zip(self.space_dims, self.space_shape, strict=True)),
            "cells": self.n_cells,
            "time": {"name": self.time_dim, "steps": self.n_time, "first": first, "last": last},
            "variables": dict(self.variables),
            "chunk": self.chunk,
        }


@dataclass(frozen=True)
class VariableCheck:
    """What :func:`check_variables` found: the dims of the first variable (in the file's
    order), each variable's dtype, and the largest HDF5 chunk in bytes (0: none known)."""

    dims: tuple[str, ...]
    dtypes: dict[str, str]
    chunk_bytes: int


def check_variables(
    ds: Any,
    data: DataSpec,
    names: Sequence[tuple[str, str]],
    *,
    where: str = "the data",
) -> VariableCheck:
    """Check that ``ds`` has the spec's space and time dims and each variable of ``names``
    (``(spec key, variable)`` pairs) along exactly those dims, with a number or bool dtype.

    The one variable check: training data (inputs and target) and new data to predict on
    (inputs only, ``where="the new data"``) pass or fail it alike.
    """
    of = "" if where == "the data" else f" of {where}"
    for dim in data.space:
        if dim not in ds.dims:
            raise DataError(
                "data.space", f"no dimension {dim!r} in {where}; dims: {listing(ds.dims)}"
            )
    if data.time not in ds.dims:
        raise DataError(
            "data.time", f"no dimension {data.time!r} in {where}; dims: {listing(ds.dims)}"
        )
    expected = {*data.space, data.time}
    dims: tuple[str, ...] | None = None
    variables: dict[str, str] = {}
    largest = 0
    for key, name in names:
        if name not in ds.data_vars:
            raise DataError(
                key, f"no variable {name!r} in {where}; variables: {listing(ds.data_vars)}"
            )
        var = ds[name]
        if set(var.dims) != expected:
            raise DataError(
                key,
                f"variable {name!r}{of} has dims ({', '.join(map(str, var.dims))}); "
                f"expected ({', '.join(sorted(expected))})",
            )
        dtype = var.dtype
        if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)) or np.issubdtype(
            dtype, np.complexfloating
        ):
            raise DataError(key, f"variable {name!r}{of} has dtype {dtype}; it must be numeric")
        variables[name] = str(dtype)
        dims = dims or tuple(str(d) for d in var.dims)
        sizes = var.encoding.get("chunksizes")
        if sizes:
            largest = max(largest, int(np.prod(sizes)) * var.dtype.itemsize)
    return VariableCheck(dims=dims or (), dtypes=variables, chunk_bytes=largest)


def check_data(job: Job, ds: Any | None = None) -> DatasetInfo:
    """Check the data against the spec, reading metadata and the time axis only."""
    data = job.data
    paths = resolve_paths(data)
    ds = ds if ds is not None else open_dataset(data, paths)
    names = [
        *(("data.inputs", v) for v in data.inputs),
        *(("data.target", v) for v in data.targets),
    ]
    checked = check_variables(ds, data, names)
    variables, largest = checked.dtypes, checked.chunk_bytes
    if job.partition.by != "cell":
        _check_group_variable(ds, job)
    times = (
        np.asarray(ds[data.time].values)
        if data.time in ds.coords
        else np.arange(ds.sizes[data.time])
    )
    order = None
    if times.size > 1:
        if np.issubdtype(times.dtype, np.datetime64) and np.isnat(times).any():
            raise DataError("data.time", "the time coordinate has missing values (NaT)")
        if not np.all(times[1:] > times[:-1]):
            order = np.argsort(times, kind="stable")
            times = times[order]
            duplicated = times[1:] == times[:-1]
            if duplicated.any():
                first = times[1:][duplicated][0]
                raise DataError(
                    "data.time",
                    f"{int(duplicated.sum())} duplicated time stamps (first: {first}); "
                    "each time step must be unique",
                )
    if data.test is not None and not np.issubdtype(times.dtype, np.datetime64):
        raise DataError("data.test.from", f"the time coordinate {data.time!r} holds no dates")
    check_periods(data, times)
    if job.search.cv.kind == "years" and not np.issubdtype(times.dtype, np.datetime64):
        raise DataError(
            "search.cv.kind", f"'years' needs dates on the time coordinate {data.time!r}"
        )
    return DatasetInfo(
        paths=tuple(paths),
        space_dims=tuple(data.space),
        space_shape=tuple(int(ds.sizes[d]) for d in data.space),
        time_dim=data.time,
        times=times,
        time_order=order,
        variables=variables,
        chunk=data.chunk,
        chunk_bytes=largest,
    )


def _check_group_variable(ds: Any, job: Job) -> None:
    name = job.partition.by
    if name not in ds.variables:
        raise DataError(
            "partition.by",
            f"'cell' or a variable along space; no variable {name!r} in the data",
        )
    dims = set(ds[name].dims)
    if dims != set(job.data.space):
        raise DataError(
            "partition.by",
            f"variable {name!r} has dims ({', '.join(map(str, ds[name].dims))}); "
            f"expected the space dims ({', '.join(job.data.space)})",
        )


def listing(names: Any) -> str:
    """Names sorted and joined, for messages that say what there is instead."""
    return ", ".join(sorted(map(str, names))) or "(none)"


LAT_NAMES = ("lat", "latitude", "nav_lat", "lats")
LON_NAMES = ("lon", "longitude", "nav_lon", "lons", "long")


def is_latitude(name: str, attrs: dict[str, Any]) -> bool:
    """A latitude, by its name, its ``standard_name`` or its units (CF conventions)."""
    return (
        name.lower() in LAT_NAMES
        or attrs.get("standard_name") == "latitude"
        or str(attrs.get("units", "")).lower() in ("degrees_north", "degree_north", "degrees_n")
    )


def is_longitude(name: str, attrs: dict[str, Any]) -> bool:
    """A longitude, by its name, its ``standard_name`` or its units (CF conventions)."""
    return (
        name.lower() in LON_NAMES
        or attrs.get("standard_name") == "longitude"
        or str(attrs.get("units", "")).lower() in ("degrees_east", "degree_east", "degrees_e")
    )


def space_coordinates(ds: Any, space_dims: tuple[str, ...]) -> dict[str, tuple[np.ndarray, dict]]:
    """Coordinates along space, flattened to one value per cell (C order of the space dims).

    Returns ``name -> (values, attrs)`` for every coordinate whose dims are space dims only,
    e.g. ``latitude(space)`` or, for a stacked ``[lat, lon]`` grid, ``lat`` and ``lon``.
    """
    shape = tuple(ds.sizes[d] for d in space_dims)
    coords: dict[str, tuple[np.ndarray, dict]] = {}
    for name, var in ds.coords.items():
        if not var.dims or not set(var.dims) <= set(space_dims):
            continue
        if len(space_dims) == 1 and name == space_dims[0] and var.dims == (name,):
            coords[str(name)] = (np.asarray(var.values), dict(var.attrs))
            continue
        full = var.transpose(*[d for d in space_dims if d in var.dims]).values
        expand = tuple(slice(None) if d in var.dims else np.newaxis for d in space_dims)
        values = np.broadcast_to(np.asarray(full)[expand], shape).reshape(-1)
        coords[str(name)] = (values, dict(var.attrs))
    return coords
