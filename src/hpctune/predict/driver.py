"""``hpctune predict``'s driver: the blocks submitted to the cluster and streamed into the
output file as they finish (:func:`predict`), or gathered lazily (:func:`prediction`)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..cluster import ClusterHandle, choose_mode, open_cluster, place, plan_execution
from ..errors import OutputError, UsageError
from ..schedulers import registry
from ..search.labels import has_label
from ..spec import Job
from .blocks import PredictContext, predict_block, prepare_prediction
from .proba import (
    PROBABILITY,
    add_probability,
    check_proba,
    proba_block,
    proba_dataset,
    split,
    training_classes,
)

log = logging.getLogger("hpctune")


@dataclass
class PredictSummary:
    """What ``predict`` wrote."""

    name: str
    output: str
    dims: dict[str, int]
    partitions: int
    """Partitions whose model was applied (``ok``)."""
    predicted: int
    """Finite predicted values."""
    missing: int
    """NaN values: a missing input, or a cell whose partition is not ok."""
    blocks: int
    seconds: float = 0.0
    cluster: str = ""
    variables: tuple[str, ...] = ("prediction",)
    """The variables written: ``prediction``, or one per target (``data.target`` a list)."""
    where: tuple[int, int] | None = None
    """With ``--where``: the cells it selects, of all the cells."""
    classes: tuple[Any, ...] | None = None
    """With ``--proba``: the classes of ``probability``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "output": self.output,
            **({"variable": self.variables[0]} if len(self.variables) == 1 else {}),
            "variables": list(self.variables),
            "dims": self.dims,
            "partitions": self.partitions,
            "predicted": self.predicted,
            "missing": self.missing,
            "blocks": self.blocks,
            "seconds": round(self.seconds, 3),
            "cluster": self.cluster,
            "where": None if self.where is None else {"cells": self.where[0], "of": self.where[1]},
            "classes": None if self.classes is None else list(self.classes),
        }

    def line(self) -> str:
        shape = " x ".join(f"{k}={v}" for k, v in self.dims.items())
        return (
            f"{self.name}: {', '.join(self.variables)}({shape}) from {self.partitions} models"
            f"{self._where()}, {self.predicted} values ({self.missing} NaN){self._classes()} in "
            f"{self.seconds:.1f} s -> {self.output}"
        )

    def _classes(self) -> str:
        return "" if self.classes is None else f", probability of {len(self.classes)} classes"

    def _where(self) -> str:
        return "" if self.where is None else f" on {self.where[0]} of {self.where[1]} cells"


def prediction(
    job: Job,
    paths: Sequence[str] | None = None,
    trusted: Sequence[str] = (),
    where: Any = None,
    proba: bool = False,
) -> Any:
    """The predictions as a lazy ``xarray.DataArray`` (one dask task per block of cells); with
    several targets, an ``xarray.Dataset`` of one such variable per target.

    Compute it on any Dask scheduler (``.compute()``, ``.to_netcdf()``); :func:`predict`
    writes a file with bounded memory instead. ``where``: as ``hpctune predict --where``;
    ``proba``: an ``xarray.Dataset`` of ``prediction`` and ``probability`` (the class axis
    is read from the training data's target at once, in this process).
    """
    import dask
    import dask.array as da
    import xarray as xr

    ctx, coords, attrs = prepare_prediction(job, paths, trusted, where)
    if proba:
        check_proba(job, ctx)
        ctx = replace(ctx, classes=training_classes(job))
    shared = dask.delayed(ctx, pure=True)
    task = proba_block if proba else predict_block
    extra = () if ctx.classes is None else (1 + len(ctx.classes),)
    # --proba's blocks are float arrays whatever the labels (proba.labels_of)
    text = ctx.text and ctx.classes is None
    dtype, none = (object, "") if text else (np.float64, np.nan)
    blocks = [
        da.from_delayed(
            dask.delayed(task, pure=True)(shared, start, stop),
            shape=(*ctx.block_shape(start, stop), *extra),
            dtype=dtype,
        )
        if ctx.predicts(start, stop)
        else da.full((*ctx.block_shape(start, stop), *extra), none, dtype=dtype)
        for start, stop in ctx.blocks()
    ]
    array = da.concatenate(blocks, axis=0)
    if ctx.classes is not None:
        return proba_dataset(array, ctx, coords, attrs[ctx.variables[0]])
    natural = (*ctx.space_dims, ctx.time_dim)
    arrays = {
        name: xr.DataArray(array[..., j] if ctx.several else array, dims=natural, name=name)
        .transpose(*ctx.dims)
        .assign_coords(coords)
        .assign_attrs(attrs[name])
        for j, name in enumerate(ctx.variables)
    }
    return xr.Dataset(arrays) if ctx.several else arrays[ctx.variables[0]]


def predict(
    job: Job,
    paths: Sequence[str] | None,
    out: str | Path,
    *,
    client: Any = None,
    trusted: Sequence[str] = (),
    where: Any = None,
    proba: bool = False,
) -> PredictSummary:
    """Write ``out`` (NetCDF) with the variable ``prediction`` (several targets: one variable
    per target; with ``proba``, a classifier's ``probability`` too: :mod:`.proba`); blocks run
    on the cluster and are written as they finish. ``paths`` default to the job's own data."""
    started = time.monotonic()
    out = Path(out).expanduser().resolve()
    if out.is_dir():
        raise UsageError(f"-o {out} is a folder; give a file name such as predictions.nc")
    ctx, coords, attrs = prepare_prediction(job, paths, trusted, where)
    if proba:
        check_proba(job, ctx)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out.parent}: {exc.strerror or exc}") from None
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    counts = {"predicted": 0, "missing": 0}
    try:
        allocation = None if client is not None else registry.detect_allocation()
        mode = "external" if client is not None else choose_mode(job, allocation)
        placement = place(job, mode, allocation, client=client)
        execution = plan_execution(job, placement, None, need_client=True)
        with open_cluster(job, execution, client) as handle:
            ctx = spread(ctx, execution.slots)
            if proba:
                ctx = replace(ctx, classes=training_classes(job, handle.client))
            blocks = [block for block in ctx.blocks() if ctx.predicts(*block)]
            # The other blocks have no model to apply: all NaN, never read (--where, skipped).
            counts["missing"] = sum(
                math.prod(ctx.block_shape(*b)) for b in ctx.blocks() if not ctx.predicts(*b)
            )
            _write_template(tmp, ctx, coords, attrs)
            if proba:
                add_probability(tmp, ctx, attrs[ctx.variables[0]])
            task = proba_block if proba else predict_block
            with _open_append(tmp) as nc:
                variables = [nc.variables[name] for name in ctx.variables]
                natural = (*ctx.space_dims, ctx.time_dim)
                axes = [natural.index(d) for d in ctx.dims]
                along = ctx.dims.index(ctx.space_dims[0])
                for (start, stop), both in _run_blocks(handle, ctx, blocks, execution.slots, task):
                    values, probs = split(both, ctx)
                    finite = int(has_label(values.reshape(-1)).sum())
                    counts["predicted"] += finite
                    counts["missing"] += values.size - finite
                    # A block is (*space, time); the file's variable may order its dims otherwise.
                    index = [slice(None)] * len(ctx.dims)
                    index[along] = slice(start, stop)
                    for j, variable in enumerate(variables):
                        one = values[..., j] if ctx.several else values
                        variable[tuple(index)] = one.transpose(axes)
                    if probs is not None:
                        probs = probs.transpose(*axes, len(axes))
                        nc.variables[PROBABILITY][tuple(index)] = probs
            description = handle.description
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    sizes = dict(zip(ctx.space_dims, ctx.space_shape, strict=True))
    sizes[ctx.time_dim] = ctx.n_time
    return PredictSummary(
        name=job.name,
        output=str(out),
        dims={d: sizes[d] for d in ctx.dims},
        partitions=len(ctx.models),
        predicted=counts["predicted"],
        missing=counts["missing"],
        blocks=len(blocks),
        seconds=time.monotonic() - started,
        cluster=description,
        variables=ctx.variables,
        where=None if ctx.selected is None else (ctx.selected, ctx.n_cells),
        classes=ctx.classes,
    )


def spread(ctx: PredictContext, slots: int) -> PredictContext:
    """Smaller blocks when there are few: at least two per worker slot where the rows allow,
    so that a small grid still keeps every worker busy."""
    rows = ctx.space_shape[0]
    wanted = max(1, math.ceil(rows / (2 * max(1, slots))))
    return replace(ctx, rows_per_block=max(1, min(ctx.rows_per_block, wanted)))


def _run_blocks(
    handle: ClusterHandle,
    ctx: PredictContext,
    blocks: list[tuple[int, int]],
    slots: int,
    task: Any = predict_block,
) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    """Blocks as they finish; at most two per worker slot in flight (bounded memory)."""
    from distributed import as_completed

    client = handle.client
    shared = client.scatter(ctx, broadcast=True, hash=False)
    limit = max(2, 2 * slots)
    todo = list(reversed(blocks))
    in_flight: dict[Any, tuple[int, int]] = {}

    def submit(block: tuple[int, int]) -> Any:
        future = client.submit(
            task,
            shared,
            *block,
            pure=False,
            key=f"hpctune-predict-{block[0]}-{time.monotonic_ns()}",
        )
        in_flight[future] = block
        return future

    first = [submit(todo.pop()) for _ in range(min(limit, len(todo)))]
    queue = as_completed(first)
    try:
        for future in queue:
            block = in_flight.pop(future)
            values = future.result()
            future.release()
            if todo:
                queue.add(submit(todo.pop()))
            yield block, values
    finally:
        if in_flight:
            client.cancel(list(in_flight), force=True)


def _write_template(
    path: Path, ctx: PredictContext, coords: dict[str, Any], attrs: dict[str, Any]
) -> None:
    """The output file with its coordinates and its empty (NaN-filled) variables."""
    import netCDF4
    import xarray as xr

    template = xr.Dataset(coords=coords)
    template.attrs.update(
        {
            "title": f"hpctune predictions of {attrs[ctx.variables[0]]['hpctune_name']}",
            "source": " ".join(ctx.paths),
        }
    )
    try:
        template.to_netcdf(path, engine="netcdf4")
        with netCDF4.Dataset(path, "a") as nc:
            sizes = dict(zip(ctx.space_dims, ctx.space_shape, strict=True))
            sizes[ctx.time_dim] = ctx.n_time
            for dim in ctx.dims:
                if dim not in nc.dimensions:
                    nc.createDimension(dim, sizes[dim])
            chunks = [sizes[d] for d in ctx.dims]
            chunks[ctx.dims.index(ctx.space_dims[0])] = min(ctx.rows_per_block, ctx.space_shape[0])
            # Text labels: a string variable ("" for none; NetCDF-4 does not compress them).
            packing = {} if ctx.text else {"zlib": True, "complevel": 1, "fill_value": np.nan}
            for name in ctx.variables:
                variable = nc.createVariable(
                    name,
                    str if ctx.text else "f8",
                    ctx.dims,
                    chunksizes=_limit_chunk(chunks),
                    **packing,
                )
                variable.setncatts(attrs[name])
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _limit_chunk(chunks: list[int], limit: int = 2**22) -> list[int]:
    """NetCDF-4 chunks below 4 Mi values (32 MiB), halving the largest dims first."""
    chunks = [max(1, c) for c in chunks]
    while math.prod(chunks) > limit:
        largest = int(np.argmax(chunks))
        chunks[largest] = max(1, chunks[largest] // 2)
    return chunks


@contextlib.contextmanager
def _open_append(path: Path) -> Iterator[Any]:
    import netCDF4

    try:
        nc = netCDF4.Dataset(path, "a")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield nc
    finally:
        nc.close()
