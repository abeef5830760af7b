"""What ``hpctune predict`` computes: the context of a prediction (which model serves which
cell, :func:`prepare_prediction`, metadata only) and the task a worker runs on a block of
cells (:func:`predict_block`), with the models it loaded kept for the next blocks."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.inspect import check_variables
from ..data.partitions import (
    cell_groups,
    dataset_partitioning,
    training_partitioning,
)
from ..data.source import open_cached, open_dataset, resolve_paths
from ..data.static import input_rows
from ..data.where import cell_partitions_inside, cells_where, parse_where
from ..errors import DataError, UsageError
from ..kept import Kept
from ..output.folder import Store
from ..output.packs import ModelIndex, read_model
from ..search.labels import empty_labels, is_text
from ..spec import DataSpec, Job
from .variables import variable_attrs, variable_names

MODEL_CACHE = 64
"""Models kept loaded per worker (a group's model serves every block of its cells)."""

_MODELS: Kept[Any] = Kept(limit=MODEL_CACHE)
"""Loaded models, per worker process, shared by its threads, by (folder, pack, offset)."""


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
    models: ModelIndex = field(repr=False)
    """Where the model of each partition is (none when the partition is not ``ok``): a
    worker reads the models of its own blocks' partitions, and no other."""
    trusted: tuple[str, ...]
    cell_partition: np.ndarray | None = field(default=None, repr=False)
    """Partition of each (flattened) cell, -1 for none; None when partition i is cell i."""
    rows_per_block: int = 1
    selected: int | None = None
    """The cells ``--where`` selects (None: no ``--where``, every cell)."""
    classes: tuple[float, ...] | tuple[str, ...] | None = None
    """With ``--proba``: the class axis of ``probability`` (:mod:`.proba`)."""
    text: bool = False
    """Whether the models predict text labels (written as text, "" for none)."""
    variables: tuple[str, ...] = ("prediction",)
    """The output variables (:mod:`.variables`): one, or one per target of a list."""
    several: bool = False
    """Whether the models predict several targets: blocks gain a last dim of the targets."""

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
        """Shape of a block as :func:`predict_block` returns it: (*space, time), or
        (*space, time, targets) for several targets."""
        targets = (len(self.variables),) if self.several else ()
        return (stop - start, *self.space_shape[1:], self.n_time, *targets)

    def predicts(self, start: int, stop: int) -> bool:
        """Whether a cell of rows ``start:stop`` has a model to apply (an ``ok`` partition,
        inside ``--where``): the other blocks are all NaN, and are not read."""
        cells = np.arange(start * self.inner, stop * self.inner, dtype=np.int64)
        partitions = cells if self.cell_partition is None else self.cell_partition[cells]
        partitions = partitions[partitions >= 0]
        return bool((self.models.file[np.unique(partitions)] >= 0).any())


def _partition_models(job: Job, store: Store) -> tuple[int, ModelIndex]:
    """Partition count of the results and where the model of each ``ok`` partition is."""
    manifest = store.manifest()
    if manifest is None:
        raise UsageError(f"no results in {store.root} (run the job first)")
    store.check_compatible(job)
    size = int(manifest["partitions"])
    models = store.model_index()
    if not len(models):
        raise UsageError(f"no partition of {store.root} finished ok: there is no model to apply")
    return size, models


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
    job: Job,
    paths: Sequence[str] | None = None,
    trusted: Sequence[str] = (),
    where: Any = None,
) -> tuple[PredictContext, dict[str, Any], dict[str, Any]]:
    """Check the new data against the job and its results, reading metadata only (and the
    description of the first model file: types it asks for and ``trusted`` lacks are refused
    before anything runs). ``where`` (``--where``: a mask variable of the new data or a box
    over its coordinates, as ``data.where``) leaves the other cells unpredicted.

    Returns the task context, the output's coordinates (name -> DataArray) and each output
    variable's attributes (name -> attributes, :mod:`.variables`).
    """
    from ..search.model_file import check_model, trusted_types

    selection = None if where is None else parse_where(where)
    new_paths = list(paths) if paths else list(job.data.paths)
    data = job.data.model_copy(update={"paths": [os.path.abspath(p) for p in new_paths]})
    resolved = resolve_paths(data)
    store = Store(job.output_dir)
    size, models = _partition_models(job, store)
    trusted = (*trusted_types(job), *trusted)
    first = models.location(int(np.argmax(models.file >= 0)))
    if first is not None:
        check_model(store.read_model(first), first, trusted)
    ds = open_dataset(data, resolved)
    try:
        inputs = [("data.inputs", name) for name in job.data.inputs]
        dims = check_variables(ds, job.data, inputs, where="the new data").dims
        space = tuple(job.data.space)
        shape = tuple(int(ds.sizes[d]) for d in space)
        n_cells = int(np.prod(shape))
        mapping = _cell_partitions(job, ds, n_cells, size)
        selected = None
        if selection is not None:
            inside = cells_where(selection, ds, space, key="--where")
            mapping = cell_partitions_inside(mapping, inside)
            selected = int(inside.sum())
        wanted = set(dims)
        coords = {
            str(name): var.load()
            for name, var in ds.coords.items()
            if var.dims and set(var.dims) <= wanted
        }
        n_time = int(ds.sizes[job.data.time])
        attrs = variable_attrs(job, ds)
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
        models=models,
        trusted=trusted,
        cell_partition=mapping,
        rows_per_block=max(1, job.data.chunk // max(inner, 1)),
        selected=selected,
        text=is_text(_trained_dtypes(store).get(job.data.targets[0], "f8")),
        variables=variable_names(job.data),
        several=job.data.multi_target,
    )
    return ctx, coords, attrs


def _trained_dtypes(store: Store) -> dict[str, str]:
    """The dtype of each variable the training read, from the manifest (text labels?)."""
    data = (store.manifest() or {}).get("data") or {}
    return dict(data.get("variables") or {})


# --------------------------------------------------------------------------- worker side


def _dataset(ctx: PredictContext) -> Any:
    return open_cached(ctx.data, ctx.paths)


def _model(ctx: PredictContext, partition: int) -> Any:
    """Partition ``partition``'s model, loaded once per worker process (the most recently used
    :data:`MODEL_CACHE` kept). Two threads may load the same model at once; one copy stays."""
    from ..search.model_file import load_model_bytes

    where = ctx.models.location(partition)
    assert where is not None
    key = (ctx.models_dir, where.file, where.offset)
    # built outside the cache's lock: other blocks go on; only this model's bytes are read
    return _MODELS.get(
        key, lambda: load_model_bytes(read_model(Path(ctx.models_dir), where), where, ctx.trusted)
    )


def block_models(
    ctx: PredictContext, start: int, stop: int
) -> tuple[int, Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, Any]]]:
    """Read rows ``start:stop`` of the first space dim (every input, static ones repeated over
    time); the block's cell count, and for each partition of its cells that has a model: its
    cells' rows in the block, their inputs (one row per cell and step), which rows have every
    input, and the model. What :func:`predict_block` and ``--proba``'s block share."""
    import dask

    ds = _dataset(ctx)
    subset = ds[list(ctx.data.inputs)].isel({ctx.space_dims[0]: slice(start, stop)})
    with dask.config.set(scheduler="sync"):
        subset = subset.compute()
    x = input_rows(subset, ctx.data.inputs, ctx.space_dims, ctx.time_dim, ctx.n_time)
    cells = np.arange(start * ctx.inner, stop * ctx.inner, dtype=np.int64)
    partitions = cells if ctx.cell_partition is None else ctx.cell_partition[cells]

    def each() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, Any]]:
        for partition in np.unique(partitions):
            if partition < 0 or not ctx.models.has(int(partition)):
                continue
            rows = np.flatnonzero(partitions == partition)
            values = x[rows].reshape(-1, x.shape[-1])
            valid = np.isfinite(values).all(axis=-1)
            if valid.any():
                yield rows, values, valid, _model(ctx, int(partition))

    return cells.size, each()


def predict_block(ctx: PredictContext, start: int, stop: int) -> np.ndarray:
    """Predictions for rows ``start:stop`` of the first space dim: shape (*space, time), with a
    last dim of the targets for several."""
    import sklearn

    n_cells, models = block_models(ctx, start, stop)
    targets = (len(ctx.variables),) if ctx.several else ()
    out = empty_labels((n_cells, ctx.n_time, *targets), ctx.text)
    for rows, values, valid, model in models:
        predicted = empty_labels((values.shape[0], *targets), ctx.text)
        with sklearn.config_context(assume_finite=True):
            predicted[valid] = model.predict(values[valid].astype(np.float64, copy=False))
        out[rows] = predicted.reshape(rows.size, ctx.n_time, *targets)
    return out.reshape(ctx.block_shape(start, stop))
