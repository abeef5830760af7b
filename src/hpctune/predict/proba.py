"""``hpctune predict --proba``: a classifier's class probabilities beside its labels.

``probability`` has the dims of ``prediction`` and a last dim ``class`` whose coordinate is
the class labels: every label of the training data's target (its distinct finite values, read
once on the workers, a block of cells per task), so that every cell shares one class axis
whatever classes its own model saw. A model gives its ``predict_proba`` for the classes it
knows and 0 for the others (it never predicts a class it was not trained on); a cell without
a model, or a row with a missing input, is NaN.

Text labels (``"forest"``, ``"water"``) give a text ``class`` coordinate. A block's task
returns one float array (the label first, then each class's probability); for text labels
its first column is the label's position on the class axis, turned back into the label by
:func:`labels_of` where the block is written.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..data.source import open_cached, resolve_paths
from ..errors import UsageError
from ..search.labels import as_target, has_label, is_text
from ..spec import DataSpec, Job
from .blocks import PredictContext, _model, block_models
from .variables import VARIABLE

PROBABILITY = "probability"
CLASS_DIM = "class"


def check_proba(job: Job, ctx: PredictContext) -> None:
    """Refuse ``--proba`` unless the models give class probabilities: the first ``ok``
    model is loaded and asked for ``predict_proba`` (an SVC without ``probability=True``
    has none)."""
    if getattr(job.data, "multi_target", False):
        raise UsageError("--proba: one target only (data.target is a list)")
    first = next((i for i in range(ctx.models.file.size) if ctx.models.has(i)), None)
    if first is None:
        return
    model = _model(ctx, first)
    if not hasattr(model, "predict_proba"):
        name = type(model[-1] if hasattr(model, "steps") else model).__name__
        raise UsageError(
            f"--proba: the models of {job.name} ({name}) give no class probabilities "
            "(predict_proba: a classifier; an SVC needs probability: true in search.fixed)"
        )


def target_classes(data: DataSpec, paths: tuple[str, ...], start: int, stop: int) -> np.ndarray:
    """The distinct finite values of the target in rows ``start:stop`` of the first space
    dim of the training data (a task on a worker)."""
    import dask

    ds = open_cached(data, paths)
    subset = ds[data.target].isel({data.space[0]: slice(start, stop)})
    with dask.config.set(scheduler="sync"):
        values = np.asarray(subset.values).reshape(-1)
    return np.unique(as_target(values[has_label(values)]))


def target_blocks(job: Job) -> tuple[DataSpec, tuple[str, ...], list[tuple[int, int]]]:
    """The training data and the blocks of rows :func:`target_classes` reads."""
    from ..data.source import open_dataset

    data = job.data.model_copy(update={"paths": [os.path.abspath(p) for p in job.data.paths]})
    paths = tuple(resolve_paths(data))
    ds = open_dataset(data, list(paths))
    try:
        rows = int(ds.sizes[data.space[0]])
        inner = int(np.prod([ds.sizes[d] for d in data.space[1:]]))
    finally:
        ds.close()
    step = max(1, data.chunk // max(1, inner))
    return data, paths, [(s, min(rows, s + step)) for s in range(0, rows, step)]


def class_axis(parts: list[np.ndarray]) -> np.ndarray:
    """The sorted union of the classes found in each block: floats (the labels' values, 0/1
    for a bool target, as ``prediction`` writes them), or texts for text labels."""
    text = any(is_text(np.asarray(p).dtype) for p in parts)
    kind = str if text else np.float64
    found = np.unique(np.concatenate([np.asarray(p, dtype=kind) for p in parts]))
    if not found.size:
        raise UsageError("--proba: the training data's target has no value")
    return found


def probabilities(model: Any, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``model``'s class probabilities of rows ``x`` on the columns ``classes``: 0 for a
    class the model does not know."""
    import sklearn

    with sklearn.config_context(assume_finite=True):
        known = model.predict_proba(x)
    out = np.zeros((x.shape[0], classes.size), dtype=np.float64)
    out[:, np.searchsorted(classes, _labels(model.classes_, classes))] = known
    return out


def axis(ctx: PredictContext) -> np.ndarray:
    """The class axis of ``ctx`` as an array: floats, or texts."""
    assert ctx.classes is not None
    return np.asarray(ctx.classes, dtype=str if ctx.text else np.float64)


def _labels(values: Any, classes: np.ndarray) -> np.ndarray:
    """Labels as the class axis holds them (float, or str)."""
    return np.asarray(values, dtype=classes.dtype if classes.dtype.kind == "U" else np.float64)


def label_column(predicted: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The first column of a block: number labels as they are, text labels as their
    position on the class axis (a float: the block is one float array)."""
    if classes.dtype.kind != "U":
        return predicted.astype(np.float64, copy=False)
    return np.searchsorted(classes, _labels(predicted, classes)).astype(np.float64)


def labels_of(column: np.ndarray, ctx: PredictContext) -> np.ndarray:
    """A block's first column as ``prediction`` writes it: the labels, or for text labels
    the texts at those positions of the class axis ("" where NaN)."""
    if not ctx.text:
        return column
    classes = axis(ctx)
    valid = np.isfinite(column)
    out = np.full(column.shape, "", dtype=object)
    out[valid] = classes[column[valid].astype(np.intp)]
    return out


def proba_block(ctx: PredictContext, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of the first space dim: shape (*space, time, 1 + classes), the
    predicted label first, then each class's probability."""
    import sklearn

    classes = axis(ctx)
    n_cells, models = block_models(ctx, start, stop)
    out = np.full((n_cells, ctx.n_time, 1 + classes.size), np.nan, dtype=np.float64)
    for rows, values, valid, model in models:
        chosen = values[valid].astype(np.float64, copy=False)
        block = np.full((values.shape[0], 1 + classes.size), np.nan)
        with sklearn.config_context(assume_finite=True):
            block[valid, 0] = label_column(np.asarray(model.predict(chosen)), classes)
        block[valid, 1:] = probabilities(model, chosen, classes)
        out[rows] = block.reshape(rows.size, ctx.n_time, -1)
    return out.reshape((stop - start, *ctx.space_shape[1:], ctx.n_time, 1 + classes.size))


def training_classes(job: Job, client: Any = None) -> tuple[Any, ...]:
    """The class axis of ``job``: :func:`target_classes` of each block of its training
    data, as tasks on ``client``'s workers (in this process without one)."""
    data, paths, blocks = target_blocks(job)
    if client is None:
        return tuple(class_axis([target_classes(data, paths, *block) for block in blocks]).tolist())
    futures = [
        client.submit(target_classes, data, paths, start, stop, pure=False)
        for start, stop in blocks
    ]
    try:
        return tuple(class_axis(client.gather(futures)).tolist())
    finally:
        client.cancel(futures)


def split(values: np.ndarray, ctx: PredictContext) -> tuple[np.ndarray, np.ndarray | None]:
    """A block's labels (*space, time) and, with ``--proba``, its probabilities (*space,
    time, class)."""
    if ctx.classes is None:
        return values, None
    return labels_of(values[..., 0], ctx), values[..., 1:]


def add_probability(path: Any, ctx: PredictContext, attrs: dict[str, Any]) -> None:
    """Add the empty (NaN) ``probability`` variable and the ``class`` coordinate to the
    output file the driver made."""
    import netCDF4

    assert ctx.classes is not None
    with netCDF4.Dataset(path, "a") as nc:
        nc.createDimension(CLASS_DIM, len(ctx.classes))
        classes = axis(ctx)
        coordinate = nc.createVariable(CLASS_DIM, str if ctx.text else "f8", (CLASS_DIM,))
        coordinate[:] = classes.astype(object) if ctx.text else classes
        coordinate.long_name = f"class of {attrs.get('hpctune_target', 'the target')}"
        chunks = [nc.dimensions[d].size for d in ctx.dims]
        chunks[ctx.dims.index(ctx.space_dims[0])] = min(ctx.rows_per_block, ctx.space_shape[0])
        variable = nc.createVariable(
            PROBABILITY,
            "f8",
            (*ctx.dims, CLASS_DIM),
            zlib=True,
            complevel=1,
            chunksizes=[*_limited(chunks, len(ctx.classes)), len(ctx.classes)],
            fill_value=np.nan,
        )
        variable.long_name = (
            "probability of each class given by each partition's best model (0: a class "
            "the model was not trained on)"
        )
        variable.hpctune_name = attrs.get("hpctune_name", "")


def _limited(chunks: list[int], classes: int, limit: int = 2**22) -> list[int]:
    """Chunks of the other dims that keep a chunk of every class below ``limit`` values."""
    chunks = [max(1, c) for c in chunks]
    while int(np.prod(chunks)) * classes > limit and max(chunks) > 1:
        largest = int(np.argmax(chunks))
        chunks[largest] = max(1, chunks[largest] // 2)
    return chunks


def proba_dataset(array: Any, ctx: PredictContext, coords: dict, attrs: dict) -> Any:
    """The lazy ``prediction`` and ``probability`` of :func:`proba_block`'s blocks
    (``array``: (*space, time, 1 + classes)) as an ``xarray.Dataset``."""
    import xarray as xr

    natural = (*ctx.space_dims, ctx.time_dim)
    first = array[..., 0]
    if ctx.text:
        first = first.map_blocks(labels_of, ctx, dtype=object)
    labels = xr.DataArray(first, dims=natural, name=VARIABLE, attrs=attrs)
    probs = xr.DataArray(array[..., 1:], dims=(*natural, CLASS_DIM), name=PROBABILITY)
    classes = axis(ctx)
    return xr.Dataset(
        {
            VARIABLE: labels.transpose(*ctx.dims),
            PROBABILITY: probs.transpose(*ctx.dims, CLASS_DIM),
        },
        coords={**coords, CLASS_DIM: classes},
    )
