"""``hpctune predict``: apply each partition's best model to new data of the same layout.

dask-ml's ``ParallelPostFit`` idea, per partition: the new data is split into blocks of
neighbouring cells (whole rows of the first space dimension, at most ``data.chunk`` cells);
a task reads its block's inputs on a worker, loads the models of the partitions its cells
belong to (safely, :func:`hpctune.search.model_file.load_model_bytes`) and predicts wherever
every input is finite. Nothing but metadata is read on the driver.

:func:`predict` streams the blocks into ``OUT.nc`` as they finish (the driver holds at most a
few blocks at once); :func:`prediction` returns the same values as a lazy, dask-backed
``xarray.DataArray``. The variable ``prediction`` has the input's dims and coordinates; with
several targets (``data.target`` a list) there is one variable per target, named after it
(:mod:`.variables`), and :func:`prediction` returns an ``xarray.Dataset`` of them.
Cells whose partition is not ``ok`` (skipped, failed, pending) and rows with a missing input
are NaN.
"""

from .blocks import MODEL_CACHE, PredictContext, predict_block, prepare_prediction
from .driver import PredictSummary, predict, prediction, spread
from .variables import VARIABLE

__all__ = [
    "MODEL_CACHE",
    "VARIABLE",
    "PredictContext",
    "PredictSummary",
    "predict",
    "predict_block",
    "prediction",
    "prepare_prediction",
    "spread",
]
