"""The data of a job: opened lazily, checked against the spec, read a few cells at a time.

The driver only reads metadata (dims, dtypes, coordinates, the time axis). Each worker opens
the files itself and reads the hyperslab of the cells it was given (:class:`CellReader`), so
no process ever holds more than a few chunks of the dataset.

``source`` opens NetCDF files or Zarr stores (and keeps one cache of open datasets),
``stores`` tells stores from files and picks the engine, ``inspect`` is the one data check,
``reader`` reads cells, ``partitions`` says which cells each search sees.
"""

from __future__ import annotations

from .inspect import DatasetInfo, VariableCheck, check_data, check_variables, space_coordinates
from .reader import READ_AHEAD_BYTES, CellBlock, CellReader
from .source import (
    CHUNK_CACHE_MAX,
    CHUNK_CACHE_MIN,
    open_cached,
    open_dataset,
    resolve_paths,
    set_netcdf_chunk_cache,
)

__all__ = [
    "CHUNK_CACHE_MAX",
    "CHUNK_CACHE_MIN",
    "READ_AHEAD_BYTES",
    "CellBlock",
    "CellReader",
    "DatasetInfo",
    "VariableCheck",
    "check_data",
    "check_variables",
    "open_cached",
    "open_dataset",
    "resolve_paths",
    "set_netcdf_chunk_cache",
    "space_coordinates",
]
