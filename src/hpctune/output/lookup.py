"""Where one partition's model is, found without building the index of every partition.

results.nc is that index once a run or a merge wrote it (``model_file``, ``model_offset``,
``model_size``): one element of each is read. A location it holds stays true, since packs are
only appended to and a finished partition is never computed again (``--restart`` removes both).
A partition results.nc does not hold as ``ok`` (a run still going, or results.nc not written
yet) is looked for in the journals, with the rule of :mod:`.latest`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .grid import grid_dims
from .journal import scan_journal
from .packs import WHOLE, ModelLocation, location_of
from .record import FINISHED

PREFIX = "models/"


def find_model(
    root: Path, index: int, partitions: int, fingerprint: str | None = None
) -> ModelLocation | None:
    """The location of partition ``index``'s model in the output folder ``root`` (None when
    it has none): from the journals, which results.nc is made from; from results.nc (given
    ``fingerprint``, of that spec) only without them. The journals first: they are read in
    Python, where opening results.nc goes through netCDF-C, which is not thread-safe and
    crashed a process whose earlier run's worker threads had used it."""
    if (root / "parts").is_dir():
        found = _from_journals(root / "parts", index, partitions)
        if found is not None:
            return found
    return from_results(root / "results.nc", index, fingerprint)


def from_results(path: Path, index: int, fingerprint: str | None) -> ModelLocation | None:
    """The location results.nc at ``path`` holds for partition ``index`` (rows or a grid);
    None when it holds none, is of another spec, or cannot be read."""
    if not path.is_file():
        return None
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="netcdf4", decode_times=False) as ds:
            if fingerprint is not None and ds.attrs.get("hpctune_fingerprint") != fingerprint:
                return None
            where = _position(ds, index)
            if where is None or str(ds["status"][where].values) != "ok":
                return None
            name = str(ds["model_file"][where].values)
            if not name.startswith(PREFIX):
                return None
            if "model_offset" not in ds:  # written before packs: one .skops file each
                return ModelLocation(name[len(PREFIX) :], 0, WHOLE)
            offset = int(ds["model_offset"][where].values)
            size = int(ds["model_size"][where].values)
            return ModelLocation(name[len(PREFIX) :], offset, size)
    except (OSError, ValueError, KeyError, IndexError):
        return None  # unreadable or another layout: the journals answer


def _position(ds: Any, index: int) -> dict[str, int] | None:
    """Where partition ``index`` is along results.nc's dims (rows, or the grid)."""
    dims = grid_dims(ds) or tuple(str(d) for d in ds["status"].dims)
    shape = tuple(int(ds.sizes[d]) for d in dims)
    if not dims or not 0 <= index < int(np.prod(shape)):
        return None
    return {d: int(i) for d, i in zip(dims, np.unravel_index(index, shape), strict=True)}


def _from_journals(parts: Path, index: int, partitions: int) -> ModelLocation | None:
    if not parts.is_dir():
        return None
    latest = finished = None
    for path in sorted(parts.glob("*.log"), key=lambda p: p.stat().st_mtime_ns):
        for record in _records_of(path, index):
            latest = record
            if record["status"] in FINISHED:
                finished = record
    chosen = finished or latest
    return None if chosen is None else location_of(chosen, partitions)


def _records_of(path: Path, index: int) -> Iterator[dict[str, Any]]:
    """The records of partition ``index`` in the journal ``path``, in order, valid as
    :func:`hpctune.output.journal.scan_journal` reads them (up to the first torn or damaged
    frame). Only records that begin ``{"index":<index>,`` (as
    :class:`~hpctune.output.journal.Journal` writes them) or do not begin like that are
    parsed: the others are scanned, not parsed."""
    wanted = b'{"index":%d,' % index
    ours = b'{"index":'

    def parse(payload: bytes) -> bool:
        digit = payload[len(ours) : len(ours) + 1]
        return not (payload.startswith(ours) and digit.isdigit()) or payload.startswith(wanted)

    for record in scan_journal(path, parse):
        if int(record["index"]) == index:
            yield record
