"""Open the data of a spec: its NetCDF files or Zarr stores (globs expanded), lazily with
xarray, and the one cache of open datasets that a worker process keeps across tasks."""

from __future__ import annotations

import glob
import warnings
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..kept import Kept
from ..spec import DataSpec
from .stores import ZARR, check_path, consolidated, engine_for

_OPEN: Kept[Any] = Kept(serial=True, close=lambda ds: ds.close())
"""Open datasets, one per files, engine, chunk and space dims, per process: workers reuse them
across tasks. Opened one at a time: netCDF-C is not thread-safe."""


def resolve_paths(data: DataSpec) -> list[str]:
    """Expand globs; each entry must match at least one file or Zarr store, and match nothing
    else."""
    found: list[str] = []
    for pattern in data.paths:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise DataError("data.paths", f"the pattern {pattern} matches no file")
            found.extend(check_path(match.rstrip("/"), pattern) for match in matches)
        else:
            found.append(check_path(pattern))
    return list(dict.fromkeys(found))


def open_dataset(data: DataSpec, paths: list[str] | None = None) -> Any:
    """The dataset, lazily: dask-backed, chunked along the (first) space dimension."""
    import xarray as xr

    paths = paths if paths is not None else resolve_paths(data)
    engine = engine_for(data, paths)
    chunks = {data.space[0]: data.chunk}
    try:
        if engine != ZARR:
            return _open(xr, paths, engine, chunks, {})
        # Consolidated metadata where every store has it, each array's own where not.
        extra = {"consolidated": all(map(consolidated, paths))}
        with warnings.catch_warnings():
            # data.chunk is the most cells a task reads: it may split a stored chunk, which
            # each task that needs a part of it then reads, as with NetCDF's chunks.
            warnings.filterwarnings("ignore", "The specified chunks separate the stored chunks")
            return _open(xr, paths, engine, chunks, extra)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError("data.paths", f"cannot open {_names(paths)}: {first}") from None


def _open(xr: Any, paths: list[str], engine: str | None, chunks: dict, extra: dict) -> Any:
    if len(paths) == 1:
        return xr.open_dataset(paths[0], engine=engine, chunks=chunks, cache=False, **extra)
    return xr.open_mfdataset(
        paths,
        engine=engine,
        chunks=chunks,
        combine="by_coords",
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="exact",
        parallel=False,
        cache=False,
        **extra,
    )


def _names(paths: list[str]) -> str:
    shown = ", ".join(Path(p).name for p in paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


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


def open_cached(
    data: DataSpec, paths: tuple[str, ...] | list[str], *, chunk_bytes: int | None = None
) -> Any:
    """The dataset of ``paths``, opened once per process and kept open for the next tasks.

    With ``chunk_bytes`` (the largest HDF5 chunk the reads touch), netCDF-C's chunk cache is
    bounded first (:func:`set_netcdf_chunk_cache`); without it, the cache is left as it is.
    """
    key = (tuple(paths), data.engine, data.chunk, tuple(data.space))

    def build() -> Any:
        netcdf = data.engine in (None, "netcdf4") and engine_for(data, list(paths)) != ZARR
        if chunk_bytes is not None and netcdf:
            set_netcdf_chunk_cache(chunk_bytes)
        return open_dataset(data, list(paths))

    return _OPEN.get(key, build)
