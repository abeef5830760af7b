"""Open NetCDF data lazily, check it against the spec, and read the rows of a few cells.

The driver only reads metadata (dims, dtypes, coordinates, the time axis). Each worker opens
the files itself and reads the hyperslab of the cells it was given (:class:`CellReader`), so
no process ever holds more than a few chunks of the dataset.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..spec import DataSpec, Job

#: Open datasets, one per spec and process: workers reuse them across tasks.
_OPEN: dict[tuple[Any, ...], Any] = {}


def resolve_paths(data: DataSpec) -> list[str]:
    """Expand globs; each entry must match at least one file."""
    found: list[str] = []
    for pattern in data.paths:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise DataError("data.paths", f"the pattern {pattern} matches no file")
            found.extend(matches)
        elif os.path.isfile(pattern):
            found.append(pattern)
        elif os.path.exists(pattern):
            raise DataError("data.paths", f"not a file: {pattern}")
        else:
            raise DataError("data.paths", f"no such file: {pattern}")
    return list(dict.fromkeys(found))


def open_dataset(data: DataSpec, paths: list[str] | None = None) -> Any:
    """The dataset, lazily: dask-backed, chunked along the (first) space dimension."""
    import xarray as xr

    paths = paths if paths is not None else resolve_paths(data)
    chunks = {data.space[0]: data.chunk}
    try:
        if len(paths) == 1:
            ds = xr.open_dataset(paths[0], engine=data.engine, chunks=chunks, cache=False)
        else:
            ds = xr.open_mfdataset(
                paths,
                engine=data.engine,
                chunks=chunks,
                combine="by_coords",
                data_vars="minimal",
                coords="minimal",
                compat="override",
                join="exact",
                parallel=False,
                cache=False,
            )
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError("data.paths", f"cannot open {_names(paths)}: {first}") from None
    return ds


def _names(paths: list[str]) -> str:
    shown = ", ".join(Path(p).name for p in paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


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


def inspect(job: Job, ds: Any | None = None) -> DatasetInfo:
    """Check the data against the spec, reading metadata and the time axis only."""
    data = job.data
    paths = resolve_paths(data)
    ds = ds if ds is not None else open_dataset(data, paths)
    for dim in data.space:
        if dim not in ds.dims:
            raise DataError(
                "data.space", f"no dimension {dim!r} in the data; dims: {_listing(ds.dims)}"
            )
    if data.time not in ds.dims:
        raise DataError(
            "data.time", f"no dimension {data.time!r} in the data; dims: {_listing(ds.dims)}"
        )
    expected = {*data.space, data.time}
    variables: dict[str, str] = {}
    largest = 0
    for key, name in [*(("data.inputs", v) for v in data.inputs), ("data.target", data.target)]:
        if name not in ds.data_vars:
            raise DataError(
                key, f"no variable {name!r} in the data; variables: {_listing(ds.data_vars)}"
            )
        var = ds[name]
        if set(var.dims) != expected:
            raise DataError(
                key,
                f"variable {name!r} has dims ({', '.join(map(str, var.dims))}); "
                f"expected ({', '.join(sorted(expected))})",
            )
        dtype = var.dtype
        if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)) or np.issubdtype(
            dtype, np.complexfloating
        ):
            raise DataError(key, f"variable {name!r} has dtype {dtype}; it must be numeric")
        variables[name] = str(dtype)
        sizes = var.encoding.get("chunksizes")
        if sizes:
            largest = max(largest, int(np.prod(sizes)) * var.dtype.itemsize)
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


def _listing(names: Any) -> str:
    return ", ".join(sorted(map(str, names))) or "(none)"


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


CHUNK_CACHE_MIN = 4 * 2**20
CHUNK_CACHE_MAX = 64 * 2**20


def set_netcdf_chunk_cache(chunk_bytes: int) -> None:
    """Bound netCDF-C's chunk cache for the files opened next (it is per variable and file).

    Its default, 64 MiB, holds whole variables of a medium dataset, so a worker that reads
    all cells in turn ends up caching the dataset. Batches read neighbouring cells, so a few
    chunks per variable are all a worker reuses: room for two of the largest, 4 to 64 MiB.
    """
    import netCDF4

    size = min(CHUNK_CACHE_MAX, max(CHUNK_CACHE_MIN, 2 * chunk_bytes))
    netCDF4.set_chunk_cache(size, 1009, 0.75)


@dataclass
class CellBlock:
    """The rows of a few cells: inputs ``x`` (cells, time, inputs) and ``y`` (cells, time)."""

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
        key = (self.info.paths, self.data.engine, self.data.chunk, tuple(self.data.space))
        ds = _OPEN.get(key)
        if ds is None:
            if self.data.engine in (None, "netcdf4"):
                set_netcdf_chunk_cache(self.info.chunk_bytes)
            ds = _OPEN[key] = open_dataset(self.data, list(self.info.paths))
        return ds

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
        names = [*self.data.inputs, self.data.target]
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
        return CellBlock(cells=cells, x=x, y=series(self.data.target))
