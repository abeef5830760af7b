"""cv_results.nc: the score surface, every candidate's cross-validated scores per partition.

A file beside results.nc rather than a ``candidate`` dimension inside it: results.nc stays one
small row per partition with the contract its readers know, and the surface, candidates times
larger, is read only by those who want it. Dims are results.nc's row dim (``space`` or
``partition``) and ``candidate``; ``param_<name>`` coordinates give each candidate's values.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..spec import Job
from .dataset import param_kinds
from .files import io_error

CV_RESULTS = "cv_results.nc"


def surface_names(job: Job) -> list[str]:
    """The variables of cv_results.nc, as in scikit-learn's ``cv_results_``."""
    stats = [f"{stat}_test_{s}" for s in job.search.scoring for stat in ("mean", "std")]
    return [*stats, "mean_fit_time"]


def surface_dataset(
    job: Job,
    plan: Any,
    coords: dict[str, tuple[np.ndarray, dict]],
    records: Mapping[int, dict] | Iterable[tuple[int, dict]],
    candidates: list[dict[str, Any]],
) -> Any:
    """float32 arrays (row, candidate); NaN for a partition not ``ok`` or without scores.
    ``records`` as :func:`hpctune.output.dataset.results_dataset` takes them."""
    import xarray as xr

    dim = "partition" if plan.grouped else "space"
    names = surface_names(job)
    n = len(candidates)
    arrays = {name: np.full((plan.size, n), np.nan, dtype=np.float32) for name in names}
    for index, record in records.items() if isinstance(records, Mapping) else records:
        if record.get("status") != "ok" or not 0 <= int(index) < plan.size:
            continue
        scores = record.get("cv_results", {})  # PartitionResult.record's form; None is NaN
        for name in names:
            if len(scores.get(name, ())) == n:
                arrays[name][int(index)] = np.array(scores[name], dtype=np.float64)
    ds = xr.Dataset({name: ((dim, "candidate"), values) for name, values in arrays.items()})
    ds = ds.assign_coords(candidate=np.arange(n))
    for name, kind in param_kinds(job).items():
        raw = [c.get(name) for c in candidates]
        values = (
            np.array(raw, dtype=np.float64)
            if kind == "float"
            else np.array([str(v) for v in raw], dtype=object)
        )
        ds = ds.assign_coords({f"param_{name}": ("candidate", values)})
        ds[f"param_{name}"].attrs["long_name"] = f"the candidate's {name}"
    if plan.grouped:
        ds = ds.assign_coords({dim: plan.labels})
    else:
        for name, (values, attrs) in coords.items():
            ds = ds.assign_coords({name: values} if name == dim else {name: (dim, values)})
            ds[name].attrs.update(attrs)
    for name in names:
        stat, _, scorer = name.partition("_test_")
        ds[name].attrs["long_name"] = (
            "mean wall seconds of a fit over the folds"
            if name == "mean_fit_time"
            else f"{'mean' if stat == 'mean' else 'standard deviation'} of the folds' {scorer}"
        )
    ds.attrs.update(
        {
            "title": f"hpctune cross-validation results of {job.name}",
            "hpctune_name": job.name,
            "hpctune_fingerprint": job.fingerprint(),
            "refit_metric": job.search.refit_metric,
            "scoring": " ".join(job.search.scoring),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
    return ds


def write_surface(ds: Any, root: Path) -> None:
    """Write ``ds`` to ``<root>/cv_results.nc`` atomically."""
    path = root / CV_RESULTS
    tmp = root / f".{CV_RESULTS}.{os.getpid()}.tmp"
    try:
        ds.to_netcdf(tmp, engine="netcdf4")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise io_error("write", path, exc) from None
