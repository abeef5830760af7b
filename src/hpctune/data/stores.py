"""Zarr stores among ``data.paths``, and the engine that opens the paths.

A Zarr store is a folder (``clim.zarr``, or any folder holding Zarr metadata), where a NetCDF
dataset is a file. ``data.engine`` left out opens NetCDF files as xarray chooses (as before
Zarr was read) and Zarr stores with the ``zarr`` engine; paths of both kinds in one spec are
refused, since xarray opens several paths with one engine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..spec import DataSpec
from ..spec.engines import EXTRAS, installed_engines

ZARR = "zarr"

ZARR_MARKERS = ("zarr.json", ".zgroup", ".zmetadata")
"""Files at the top of a Zarr group: ``zarr.json`` (format 3), ``.zgroup`` and, consolidated,
``.zmetadata`` (format 2)."""

ZARR_SUFFIX = ".zarr"


def is_zarr_store(path: str) -> bool:
    """Whether ``path`` is a folder holding a Zarr group (consolidated or not)."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, m)) for m in ZARR_MARKERS)


def consolidated(store: str) -> bool:
    """Whether the Zarr store keeps its metadata consolidated (one read opens it): format 2's
    ``.zmetadata``, or format 3's ``consolidated_metadata`` in ``zarr.json``."""
    if os.path.isfile(os.path.join(store, ".zmetadata")):
        return True
    return bool(_format3_metadata(store).get("consolidated_metadata"))


def is_zarr_array(path: str) -> bool:
    """Whether ``path`` is a Zarr store of one array (``.zarray``, or ``zarr.json`` of node
    type ``array``): a variable, not a dataset of them."""
    if os.path.isfile(os.path.join(path, ".zarray")):
        return True
    return _format3_metadata(path).get("node_type") == "array"


def _format3_metadata(path: str) -> dict[str, Any]:
    """The node's ``zarr.json`` (format 3) as a mapping; empty where there is none to read."""
    try:
        with open(os.path.join(path, "zarr.json"), encoding="utf-8") as file:
            node = json.load(file)
    except (OSError, ValueError):
        return {}
    return node if isinstance(node, dict) else {}


def check_path(path: str, pattern: str | None = None) -> str:
    """``path`` if it is a file or a Zarr store of a group; else the error names it (and the
    pattern that matched it)."""
    matched = f"the pattern {pattern} matches " if pattern else ""
    if os.path.isdir(path) and is_zarr_array(path):
        raise DataError(
            "data.paths", f"{matched}a Zarr array, not a group of variables (a dataset): {path}"
        )
    if os.path.isfile(path) or is_zarr_store(path):
        return path
    if os.path.isdir(path):
        zarr_named = path.rstrip("/").endswith(ZARR_SUFFIX)
        what = (
            "a folder that is not a Zarr store"
            if zarr_named
            else "a folder, not a file or Zarr store"
        )
        markers = " or ".join(ZARR_MARKERS[:2])
        raise DataError("data.paths", f"{matched}{what} (no {markers} in it): {path}")
    if os.path.exists(path):
        raise DataError("data.paths", f"{matched}not a file or Zarr store: {path}")
    raise DataError("data.paths", f"no such file or Zarr store: {path}")


def engine_for(data: DataSpec, paths: list[str]) -> str | None:
    """The engine that opens ``paths``: ``data.engine`` if given (it must fit the paths),
    ``zarr`` for Zarr stores, or None (xarray's choice) for NetCDF files."""
    is_store = [is_zarr_store(p) for p in paths]
    stores = [p for p, store in zip(paths, is_store, strict=True) if store]
    files = [p for p, store in zip(paths, is_store, strict=True) if not store]
    if data.engine == ZARR and files:
        raise DataError("data.engine", f"'zarr' opens Zarr stores; {_name(files[0])} is a file")
    if data.engine is not None and data.engine != ZARR and stores:
        raise DataError(
            "data.engine",
            f"{data.engine!r} opens NetCDF files; {_name(stores[0])} is a Zarr store "
            "(data.engine: zarr, or leave it out)",
        )
    if data.engine is not None:
        return data.engine
    if not stores:
        return None
    if files:
        raise DataError(
            "data.paths",
            f"mixes Zarr stores ({_name(stores[0])}) and NetCDF files ({_name(files[0])}); "
            "one spec reads one kind",
        )
    if ZARR not in installed_engines():
        raise DataError(
            "data.paths",
            f"{_name(stores[0])} is a Zarr store and zarr is not installed here: {EXTRAS[ZARR]}",
        )
    return ZARR


def _name(path: str) -> str:
    return Path(path).name
