"""results.nc: one row per partition, built from the records of the output folder (on the
input's grid for a stacked ``data.space``: :mod:`hpctune.output.grid`)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..spec import HALVING_METHODS, Job
from .grid import on_grid
from .packs import ModelColumns
from .record import (
    HALVING_COLUMNS,
    LEADING_COLUMNS,
    TEST_METRICS,
    TRAILING_COLUMNS,
    PartitionResult,
)
from .targets import describe_targets, test_column
from .versions import versions


def param_kinds(job: Job) -> dict[str, str]:
    """``float`` for a parameter whose values are all numbers (or a distribution), else ``str``."""
    kinds = {}
    for name, values in job.search.params.items():
        numeric = isinstance(values, dict) or all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        kinds[name] = "float" if numeric else "str"
    return kinds


def results_dataset(
    job: Job,
    plan: Any,
    coords: dict[str, tuple[np.ndarray, dict]],
    records: Mapping[int, dict] | Iterable[tuple[int, dict]],
    test_metrics: Sequence[str] = TEST_METRICS,
    space_sizes: dict[str, int] | None = None,
    multi_output: str | None = None,
) -> Any:
    """One row per partition: dimension ``space`` (cells) or ``partition`` (groups);
    ``test_metrics``: the ``test_<name>`` variables (a classifier's are its scorers).
    ``space_sizes`` (the data's space dims and lengths): with two or more, the cells are
    laid out on those dims instead (:func:`hpctune.output.grid.on_grid`). Several targets
    (``data.target`` a list): ``test_*`` have a ``target`` dim and ``multi_output`` says how
    the model predicts them (:mod:`hpctune.output.targets`).

    ``records``: each partition's record, as a mapping or as ``(index, record)`` pairs read one
    at a time (:meth:`hpctune.output.latest.LatestRecords.records`): the columns are filled as
    they come, so the records are never all held at once."""
    import xarray as xr

    size = plan.size
    dim = "partition" if plan.grouped else "space"
    fills: list[tuple[np.ndarray, Any]] = []

    def column(getter: Any, dtype: Any, missing: Any, tail: tuple[int, ...] = ()) -> np.ndarray:
        """A column of ``missing`` values, filled from each record below with ``getter``."""
        values = np.full((size, *tail), missing, dtype=dtype)
        fills.append((values, getter))
        return values

    inner: dict[str, tuple[str, ...]] = {}  # dims after the partition's (``target``)
    variables: dict[str, Any] = {
        col.name: column(lambda r, n=col.name: getattr(r, n), col.dtype, col.missing)
        for col in LEADING_COLUMNS
    }
    for name, kind in param_kinds(job).items():
        if kind == "float":
            variables[f"best_{name}"] = column(
                lambda r, n=name: float(r.best_params[n]) if n in r.best_params else np.nan,
                np.float64,
                np.nan,
            )
        else:
            variables[f"best_{name}"] = column(
                lambda r, n=name: str(r.best_params[n]) if n in r.best_params else "", object, ""
            )
    for scorer in job.search.scoring:
        variables[f"cv_{scorer}"] = column(
            lambda r, s=scorer: r.cv_scores.get(s, np.nan), np.float64, np.nan
        )
    if job.data.test is not None:
        for metric in test_metrics:
            inner[f"test_{metric}"], tail, getter = test_column(metric, job.data)
            variables[f"test_{metric}"] = column(getter, np.float64, np.nan, tail)
    halving = HALVING_COLUMNS if job.search.method in HALVING_METHODS else ()
    for col in halving:
        variables[col.name] = column(
            lambda r, n=col.name, m=col.missing: r.halving.get(n, m), col.dtype, col.missing
        )
    for col in TRAILING_COLUMNS:
        variables[col.name] = column(lambda r, n=col.name: getattr(r, n), col.dtype, col.missing)
    models = ModelColumns(size)
    variables.update(models.variables())
    pairs = records.items() if isinstance(records, Mapping) else records
    for index, record in pairs:
        if not 0 <= index < size:
            continue
        models.fill(index, record)
        result = PartitionResult.from_record(record)
        for values, getter in fills:
            value = getter(result)
            values[index] = sys.intern(value) if isinstance(value, str) else value
    ds = xr.Dataset(
        {name: ((dim, *inner.get(name, ())), values) for name, values in variables.items()}
    )
    if plan.grouped:
        ds = ds.assign_coords({dim: plan.labels, "n_cells": (dim, [m.size for m in plan.members])})
        ds[dim].attrs["long_name"] = f"value of {job.partition.by}"
    else:
        for name, (values, attrs) in coords.items():
            if name == "space":
                ds = ds.assign_coords(space=values)
            else:
                ds = ds.assign_coords({name: (dim, values)})
            ds[name].attrs.update(attrs)
    _describe_variables(ds, job)
    ds.attrs.update(
        {
            "title": f"hpctune results of {job.name}",
            "hpctune_name": job.name,
            "hpctune_fingerprint": job.fingerprint(),
            "hpctune_spec": json.dumps(job.to_dict()),
            "hpctune_version": versions()["hpctune"],
            "partition_by": job.partition.by,
            "space_dims": " ".join(job.data.space),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
    describe_targets(ds, job.data, multi_output)
    return ds if plan.grouped else on_grid(ds, space_sizes)


def _describe_variables(ds: Any, job: Job) -> None:
    refit = job.search.refit_metric
    notes = {
        col.name: col.long_name.format(refit=refit)
        for col in (*LEADING_COLUMNS, *HALVING_COLUMNS, *TRAILING_COLUMNS)
        if col.name in ds
    }
    notes.update(ModelColumns.LONG_NAMES)
    for name, text in notes.items():
        ds[name].attrs["long_name"] = text
    for name in ds.data_vars:
        if str(name).startswith("test_"):
            ds[name].attrs["long_name"] = f"{str(name)[5:]} of the best model on the test period"
        elif str(name).startswith("cv_"):
            ds[name].attrs["long_name"] = (
                f"mean cross-validated {str(name)[3:]} of the best candidate"
            )
