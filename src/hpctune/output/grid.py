"""results.nc on the input's grid: with a stacked ``data.space`` (``[lat, lon]``) and one
partition per cell, results.nc is laid out on those dims (``best_score(lat, lon)``), so that
``xr.open_dataset(path).best_score.plot()`` draws the map users draw first.

Every cell of a stacked grid is a partition (cells ``data.where`` leaves out and cells without
data are ``skipped`` in their place), so the grid is a reshape of the rows in C order of the
space dims, the order partitions are numbered in. hpctune's own readers (the report, the cell
layout) take rows: :func:`rows` flattens a gridded results dataset back to them, so only the
file's layout differs. A one-dim ``space`` and grouped partitions (dim ``partition``) keep
their rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ROWS = "space"
"""The dim of one row per cell."""


def grid_sizes(info: Any) -> dict[str, int]:
    """The space dims and lengths of the data ``info`` describes (a
    :class:`~hpctune.data.inspect.DatasetInfo`): the grid :func:`on_grid` lays results on."""
    return dict(zip(info.space_dims, info.space_shape, strict=True))


def on_grid(ds: Any, sizes: dict[str, int] | None) -> Any:
    """``ds`` (one row per cell along ``space``) laid out on the space dims ``sizes`` (their
    names and lengths, in ``data.space`` order); ``ds`` itself for one space dim or none."""
    import xarray as xr

    if not sizes or len(sizes) < 2 or ROWS not in ds.dims:
        return ds
    dims, shape = tuple(sizes), tuple(int(n) for n in sizes.values())
    if int(np.prod(shape)) != ds.sizes[ROWS]:
        raise ValueError(f"{ds.sizes[ROWS]} result rows do not fill a grid of {sizes}")

    def reshaped(var: Any) -> Any:
        inner = [d for d in var.dims if d != ROWS]
        values = np.asarray(var.transpose(ROWS, *inner).values)
        return xr.Variable(
            (*dims, *inner), values.reshape(shape + values.shape[1:]), var.attrs, var.encoding
        )

    data_vars = {
        name: reshaped(var) if ROWS in var.dims else var for name, var in ds.data_vars.items()
    }
    coords: dict[str, Any] = {}
    for name, var in ds.coords.items():
        if name == ROWS:
            continue
        if ROWS not in var.dims:
            coords[str(name)] = var
            continue
        full = reshaped(var)
        coords[str(name)] = _first_along(full, dims, keep=(name,) if name in dims else None)
    return xr.Dataset(data_vars, coords, ds.attrs)


def _first_along(var: Any, dims: tuple[str, ...], keep: tuple[str, ...] | None) -> Any:
    """``var`` on the space dims it varies along (``keep``: on those alone): a coordinate
    such as ``lat`` of a regular grid is 1-D again, a curvilinear one stays 2-D."""
    if keep is None:
        keep = tuple(d for d in dims if not _constant_along(var, d))
    return var.isel({d: 0 for d in dims if d not in keep})


def _constant_along(var: Any, dim: str) -> bool:
    values = np.asarray(var.values)
    first = np.asarray(var.isel({dim: [0]}).values)
    same = values == first
    if values.dtype.kind in "fc":
        same = same | (np.isnan(values) & np.isnan(first))
    return bool(np.all(same))


def grid_dims(ds: Any) -> tuple[str, ...]:
    """The space dims a results dataset is laid out on; () for one in rows."""
    dims = tuple(str(ds.attrs.get("space_dims", "")).split())
    if len(dims) < 2 or ROWS in ds.dims or "partition" in ds.dims:
        return ()
    return dims if all(d in ds.dims for d in dims) else ()


def rows(ds: Any) -> Any:
    """A results dataset with one row per cell along ``space`` (C order of the space dims):
    a gridded one flattened back, with one coordinate value per cell (``lat(space)``),
    any other returned as it is."""
    import xarray as xr

    dims = grid_dims(ds)
    if not dims:
        return ds
    shape = tuple(ds.sizes[d] for d in dims)

    def flat(var: Any) -> Any:
        inner = [d for d in var.dims if d not in dims]
        own = [d for d in dims if d in var.dims]
        values = np.asarray(var.transpose(*own, *inner).values)
        expand = tuple(slice(None) if d in own else np.newaxis for d in dims)
        full = np.broadcast_to(values[expand], shape + values.shape[len(own) :])
        return xr.Variable(
            (ROWS, *inner), full.reshape((-1, *full.shape[len(dims) :])), var.attrs, var.encoding
        )

    def spatial(var: Any) -> bool:
        return any(d in dims for d in var.dims)

    data_vars = {name: flat(var) if spatial(var) else var for name, var in ds.data_vars.items()}
    coords = {str(name): flat(var) if spatial(var) else var for name, var in ds.coords.items()}
    return xr.Dataset(data_vars, coords, ds.attrs)
