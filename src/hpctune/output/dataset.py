"""results.nc: one row per partition, built from the records of the output folder."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np

from ..spec import Job
from .record import TEST_METRICS, PartitionResult
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
    job: Job, plan: Any, coords: dict[str, tuple[np.ndarray, dict]], records: dict[int, dict]
) -> Any:
    """One row per partition: dimension ``space`` (cells) or ``partition`` (groups)."""
    import xarray as xr

    size = plan.size
    dim = "partition" if plan.grouped else "space"
    results = [
        PartitionResult.from_record(records[i]) if i in records else None for i in range(size)
    ]

    def column(getter: Any, dtype: Any, missing: Any) -> np.ndarray:
        return np.array([missing if r is None else getter(r) for r in results], dtype=dtype)

    variables: dict[str, Any] = {
        "status": column(lambda r: r.status, object, "pending"),
        "reason": column(
            lambda r: r.reason,
            object,
            "not computed yet (the run stopped or this slice did not run)",
        ),
        "best_score": column(lambda r: r.best_score, np.float64, np.nan),
        "n_train": column(lambda r: r.n_train, np.int64, 0),
        "n_test": column(lambda r: r.n_test, np.int64, 0),
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
        for metric in TEST_METRICS:
            variables[f"test_{metric}"] = column(
                lambda r, m=metric: r.test_scores.get(m, np.nan), np.float64, np.nan
            )
    variables["fit_seconds"] = column(lambda r: r.fit_seconds, np.float64, np.nan)
    variables["node"] = column(lambda r: r.node, object, "")
    variables["model_file"] = column(
        lambda r: f"models/{plan.model_name(r.index)}" if r.status == "ok" else "", object, ""
    )
    ds = xr.Dataset({name: (dim, values) for name, values in variables.items()})
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
    return ds


def _describe_variables(ds: Any, job: Job) -> None:
    notes = {
        "status": "ok, skipped, failed, or pending (not computed yet)",
        "reason": "why a partition was skipped or failed",
        "best_score": f"mean cross-validated {job.search.refit_metric} of the best candidate",
        "n_train": "valid rows used by the search (training period)",
        "n_test": "valid rows of the test period",
        "fit_seconds": "wall seconds of the search, refit included",
        "node": "host or scheduler node that computed the partition",
        "model_file": "best model, relative to the output folder (skops format)",
    }
    for name, text in notes.items():
        ds[name].attrs["long_name"] = text
    for name in ds.data_vars:
        if str(name).startswith("test_"):
            ds[name].attrs["long_name"] = f"{str(name)[5:]} of the best model on the test period"
        elif str(name).startswith("cv_"):
            ds[name].attrs["long_name"] = (
                f"mean cross-validated {str(name)[3:]} of the best candidate"
            )
