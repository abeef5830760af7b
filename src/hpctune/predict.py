"""``hpctune predict``: apply each partition's best model to new data of the same layout.

dask-ml's ``ParallelPostFit`` idea, per partition: the new data is split into blocks of
neighbouring cells (whole rows of the first space dimension, at most ``data.chunk`` cells);
a task reads its block's inputs on a worker, loads the models of the partitions its cells
belong to (safely, :func:`hpctune.search.model_file.load_model_file`) and predicts wherever
every input is finite. Nothing but metadata is read on the driver.

:func:`predict` streams the blocks into ``OUT.nc`` as they finish (the driver holds at most a
few blocks at once); :func:`prediction` returns the same values as a lazy, dask-backed
``xarray.DataArray``. The variable ``prediction`` has the input's dims and coordinates.
Cells whose partition is not ``ok`` (skipped, failed, pending) and rows with a missing input
are NaN.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .cluster import ClusterHandle, choose_mode, open_cluster, place, plan_execution
from .data.inspect import check_variables
from .data.partitions import (
    cell_groups,
    dataset_partitioning,
    model_file_name,
    training_partitioning,
)
from .data.source import open_cached, open_dataset, resolve_paths
from .errors import DataError, OutputError, UsageError
from .output.folder import Store
from .schedulers import registry
from .spec import DataSpec, Job

log = logging.getLogger("hpctune")

VARIABLE = "prediction"

#: Loaded models, per worker process.
_MODELS: OrderedDict[str, Any] = OrderedDict()
MODEL_CACHE = 64
"""Models kept loaded per worker (a group's model serves every block of its cells)."""


# --------------------------------------------------------------------------- what to compute


@dataclass(frozen=True)
class PredictContext:
    """Everything a block task needs; small (no data), sent to each worker once."""

    data: DataSpec
    """The new data: the job's data spec with the new paths."""
    paths: tuple[str, ...]
    space_dims: tuple[str, ...]
    space_shape: tuple[int, ...]
    time_dim: str
    n_time: int
    dims: tuple[str, ...]
    """The output's dims, in the order of the first input variable."""
    models_dir: str
    model_files: tuple[str, ...]
    """Model file of each partition ('' when the partition is not ``ok``)."""
    trusted: tuple[str, ...]
    cell_partition: np.ndarray | None = field(default=None, repr=False)
    """Partition of each (flattened) cell, -1 for none; None when partition i is cell i."""
    rows_per_block: int = 1

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.space_shape))

    @property
    def inner(self) -> int:
        """Cells in one row of the first space dimension."""
        return int(np.prod(self.space_shape[1:]))

    def blocks(self) -> list[tuple[int, int]]:
        """``(start, stop)`` rows of the first space dimension, one pair per task."""
        rows = self.space_shape[0]
        return [
            (start, min(rows, start + self.rows_per_block))
            for start in range(0, rows, self.rows_per_block)
        ]

    def block_shape(self, start: int, stop: int) -> tuple[int, ...]:
        """Shape of a block as :func:`predict_block` returns it: (*space, time)."""
        return (stop - start, *self.space_shape[1:], self.n_time)


def _partition_models(job: Job, store: Store) -> tuple[int, tuple[str, ...]]:
    """Partition count of the results and the model file of each ``ok`` partition."""
    manifest = store.manifest()
    if manifest is None:
        raise UsageError(f"no results in {store.root} (run the job first)")
    store.check_compatible(job)
    size = int(manifest["partitions"])
    records = store.records()
    files = tuple(
        model_file_name(i, size) if records.get(i, {}).get("status") == "ok" else ""
        for i in range(size)
    )
    if not any(files):
        raise UsageError(f"no partition of {store.root} finished ok: there is no model to apply")
    return size, files


def _cell_partitions(job: Job, ds_new: Any, n_cells: int, size: int) -> np.ndarray | None:
    """Partition of each cell of the new data (None: partition i is cell i)."""
    if job.partition.by == "cell":
        if n_cells != size:
            raise DataError(
                "data.space",
                f"the new data has {n_cells} cells, the results {size}: one model per cell "
                "needs the same grid",
            )
        return None
    trained = training_partitioning(job)
    if trained.size != size:
        raise UsageError(
            f"the training data now has {trained.size} groups of {job.partition.by}, "
            f"the results {size}; they no longer match"
        )
    assert trained.labels is not None and trained.members is not None
    if job.partition.by in ds_new.variables:
        return cell_groups(dataset_partitioning(job, ds_new), trained.labels, n_cells)
    if n_cells != trained.n_cells:
        raise DataError(
            "partition.by",
            f"the new data has no variable {job.partition.by!r} and {n_cells} cells, the "
            f"training data {trained.n_cells}: give the new data the group variable",
        )
    return cell_groups(trained, trained.labels, n_cells)


def prepare_prediction(
    job: Job, paths: Sequence[str] | None = None, trusted: Sequence[str] = ()
) -> tuple[PredictContext, dict[str, Any], dict[str, Any]]:
    """Check the new data against the job and its results, reading metadata only (and the
    description of the first model file: types it asks for and ``trusted`` lacks are refused
    before anything runs).

    Returns the task context, the output's coordinates (name -> DataArray) and the
    prediction's attributes.
    """
    from .search.model_file import check_model_file, trusted_types

    new_paths = list(paths) if paths else list(job.data.paths)
    data = job.data.model_copy(update={"paths": [os.path.abspath(p) for p in new_paths]})
    resolved = resolve_paths(data)
    store = Store(job.output_dir)
    size, files = _partition_models(job, store)
    trusted = (*trusted_types(job), *trusted)
    first = next((name for name in files if name), None)
    if first is not None:
        check_model_file(store.models / first, trusted)
    ds = open_dataset(data, resolved)
    try:
        inputs = [("data.inputs", name) for name in job.data.inputs]
        dims = check_variables(ds, job.data, inputs, where="the new data").dims
        space = tuple(job.data.space)
        shape = tuple(int(ds.sizes[d]) for d in space)
        n_cells = int(np.prod(shape))
        mapping = _cell_partitions(job, ds, n_cells, size)
        wanted = set(dims)
        coords = {
            str(name): var.load()
            for name, var in ds.coords.items()
            if var.dims and set(var.dims) <= wanted
        }
        n_time = int(ds.sizes[job.data.time])
        target_attrs = {}
        if job.data.target in ds.variables:
            target_attrs = {
                k: v for k, v in ds[job.data.target].attrs.items() if k in ("units", "long_name")
            }
    finally:
        ds.close()
    inner = int(np.prod(shape[1:]))
    ctx = PredictContext(
        data=data,
        paths=tuple(resolved),
        space_dims=space,
        space_shape=shape,
        time_dim=job.data.time,
        n_time=n_time,
        dims=dims,
        models_dir=str(store.models),
        model_files=files,
        trusted=trusted,
        cell_partition=mapping,
        rows_per_block=max(1, job.data.chunk // max(inner, 1)),
    )
    attrs = {
        "long_name": f"{target_attrs.get('long_name', job.data.target)} predicted by each "
        "partition's best model",
        **({"units": target_attrs["units"]} if "units" in target_attrs else {}),
        "hpctune_name": job.name,
        "hpctune_fingerprint": job.fingerprint(),
        "hpctune_target": job.data.target,
        "hpctune_inputs": " ".join(job.data.inputs),
    }
    return ctx, coords, attrs


# --------------------------------------------------------------------------- worker side


def _dataset(ctx: PredictContext) -> Any:
    return open_cached(ctx.data, ctx.paths)


def _model(ctx: PredictContext, partition: int) -> Any:
    from .search.model_file import load_model_file

    path = os.path.join(ctx.models_dir, ctx.model_files[partition])
    model = _MODELS.get(path)
    if model is None:
        model = load_model_file(path, ctx.trusted)
        _MODELS[path] = model
        while len(_MODELS) > MODEL_CACHE:
            _MODELS.popitem(last=False)
    else:
        _MODELS.move_to_end(path)
    return model


def predict_block(ctx: PredictContext, start: int, stop: int) -> np.ndarray:
    """Predictions for rows ``start:stop`` of the first space dim: shape (*space, time)."""
    import dask
    import sklearn

    ds = _dataset(ctx)
    subset = ds[list(ctx.data.inputs)].isel({ctx.space_dims[0]: slice(start, stop)})
    with dask.config.set(scheduler="sync"):
        subset = subset.compute()
    order = (*ctx.space_dims, ctx.time_dim)
    x = np.stack(
        [subset[name].transpose(*order).values for name in ctx.data.inputs], axis=-1
    ).reshape(-1, ctx.n_time, len(ctx.data.inputs))
    cells = np.arange(start * ctx.inner, stop * ctx.inner, dtype=np.int64)
    partitions = cells if ctx.cell_partition is None else ctx.cell_partition[cells]
    out = np.full((cells.size, ctx.n_time), np.nan, dtype=np.float64)
    for partition in np.unique(partitions):
        if partition < 0 or not ctx.model_files[partition]:
            continue
        rows = np.flatnonzero(partitions == partition)
        values = x[rows].reshape(-1, x.shape[-1])
        valid = np.isfinite(values).all(axis=-1)
        if not valid.any():
            continue
        model = _model(ctx, int(partition))
        predicted = np.full(values.shape[0], np.nan)
        with sklearn.config_context(assume_finite=True):
            predicted[valid] = model.predict(values[valid].astype(np.float64, copy=False))
        out[rows] = predicted.reshape(rows.size, ctx.n_time)
    return out.reshape(ctx.block_shape(start, stop))


# --------------------------------------------------------------------------- driver side


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "output": self.output,
            "variable": VARIABLE,
            "dims": self.dims,
            "partitions": self.partitions,
            "predicted": self.predicted,
            "missing": self.missing,
            "blocks": self.blocks,
            "seconds": round(self.seconds, 3),
            "cluster": self.cluster,
        }

    def line(self) -> str:
        shape = " x ".join(f"{k}={v}" for k, v in self.dims.items())
        return (
            f"{self.name}: {VARIABLE}({shape}) from {self.partitions} models, "
            f"{self.predicted} values ({self.missing} NaN) in {self.seconds:.1f} s -> {self.output}"
        )


def prediction(job: Job, paths: Sequence[str] | None = None, trusted: Sequence[str] = ()) -> Any:
    """The predictions as a lazy ``xarray.DataArray`` (one dask task per block of cells).

    Compute it on any Dask scheduler (``.compute()``, ``.to_netcdf()``); :func:`predict`
    writes a file with bounded memory instead.
    """
    import dask
    import dask.array as da
    import xarray as xr

    ctx, coords, attrs = prepare_prediction(job, paths, trusted)
    shared = dask.delayed(ctx, pure=True)
    blocks = [
        da.from_delayed(
            dask.delayed(predict_block, pure=True)(shared, start, stop),
            shape=ctx.block_shape(start, stop),
            dtype=np.float64,
        )
        for start, stop in ctx.blocks()
    ]
    array = da.concatenate(blocks, axis=0)
    natural = (*ctx.space_dims, ctx.time_dim)
    result = xr.DataArray(array, dims=natural, name=VARIABLE, attrs=attrs)
    result = result.transpose(*ctx.dims).assign_coords(coords)
    return result


def predict(
    job: Job,
    paths: Sequence[str] | None,
    out: str | Path,
    *,
    client: Any = None,
    trusted: Sequence[str] = (),
) -> PredictSummary:
    """Write ``out`` (NetCDF) with the variable ``prediction``; blocks run on the cluster and
    are written as they finish. ``paths`` default to the job's own data."""
    started = time.monotonic()
    out = Path(out).expanduser().resolve()
    if out.is_dir():
        raise UsageError(f"-o {out} is a folder; give a file name such as predictions.nc")
    ctx, coords, attrs = prepare_prediction(job, paths, trusted)
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
            blocks = ctx.blocks()
            _write_template(tmp, ctx, coords, attrs)
            with _open_append(tmp) as nc:
                variable = nc.variables[VARIABLE]
                natural = (*ctx.space_dims, ctx.time_dim)
                axes = [natural.index(d) for d in ctx.dims]
                along = ctx.dims.index(ctx.space_dims[0])
                for (start, stop), values in _run_blocks(handle, ctx, blocks, execution.slots):
                    finite = int(np.isfinite(values).sum())
                    counts["predicted"] += finite
                    counts["missing"] += values.size - finite
                    # A block is (*space, time); the file's variable may order its dims otherwise.
                    index = [slice(None)] * len(ctx.dims)
                    index[along] = slice(start, stop)
                    variable[tuple(index)] = values.transpose(axes)
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
        partitions=sum(1 for f in ctx.model_files if f),
        predicted=counts["predicted"],
        missing=counts["missing"],
        blocks=len(blocks),
        seconds=time.monotonic() - started,
        cluster=description,
    )


def spread(ctx: PredictContext, slots: int) -> PredictContext:
    """Smaller blocks when there are few: at least two per worker slot where the rows allow,
    so that a small grid still keeps every worker busy."""
    rows = ctx.space_shape[0]
    wanted = max(1, math.ceil(rows / (2 * max(1, slots))))
    return replace(ctx, rows_per_block=max(1, min(ctx.rows_per_block, wanted)))


def _run_blocks(
    handle: ClusterHandle, ctx: PredictContext, blocks: list[tuple[int, int]], slots: int
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
            predict_block,
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
    """The output file with its coordinates and an empty (NaN-filled) ``prediction``."""
    import netCDF4
    import xarray as xr

    template = xr.Dataset(coords=coords)
    template.attrs.update(
        {"title": f"hpctune predictions of {attrs['hpctune_name']}", "source": " ".join(ctx.paths)}
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
            variable = nc.createVariable(
                VARIABLE,
                "f8",
                ctx.dims,
                zlib=True,
                complevel=1,
                chunksizes=_limit_chunk(chunks),
                fill_value=np.nan,
            )
            variable.setncatts(attrs)
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
