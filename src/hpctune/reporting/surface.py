"""The report's score-surface figure, from cv_results.nc: the cross-validated score against
each searched parameter, across the partitions (is the best value at the grid's edge? is the
surface flat?)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..output.surface import CV_RESULTS
from ..spec import Job
from .figures import _new_figure, _save, grid_values

SURFACE_PNG = "score_surface.png"


def surface_figures(job: Job, root: Path, folder: Path) -> list[tuple[str, str, str]]:
    """Draw the score surface of ``<root>/cv_results.nc`` into ``folder``: its (file, title,
    caption), none when the file is absent (a halving search, results of an older version)."""
    import xarray as xr

    path = root / CV_RESULTS
    if not path.exists():
        return []
    with xr.open_dataset(path) as opened:
        surface = opened.load()
    refit = job.search.refit_metric
    if f"mean_test_{refit}" not in surface or not job.search.params:
        return []
    draw_surface(job, surface, folder / SURFACE_PNG)
    caption = (
        f"For each value of each searched parameter, each partition's best mean "
        f"cross-validated {refit} over the other parameters' values: the median over the ok "
        "partitions (a line; dots for categories and random draws) and their 10-90% range "
        "(a band or bars). A best value at the grid's edge asks for a wider grid; a flat "
        "profile, for no search of that parameter."
    )
    return [(SURFACE_PNG, "Score against each searched parameter", caption)]


def profile(scores: np.ndarray, values: np.ndarray, value: Any) -> np.ndarray:
    """Per partition (rows of ``scores``), the best score over the candidates (columns) whose
    parameter is ``value``; NaN for a partition without a finite one."""
    chosen = scores[:, values == value]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: partitions not ok
        return np.nanmax(chosen, axis=1) if chosen.shape[1] else np.full(len(scores), np.nan)


def draw_surface(job: Job, surface: Any, path: Path) -> None:
    """One panel per searched parameter: the median of :func:`profile` over the partitions
    and its 10-90% band, against the parameter's values."""
    refit = job.search.refit_metric
    scores = np.asarray(surface[f"mean_test_{refit}"].values, dtype=np.float64)
    scores = scores.reshape(-1, scores.shape[-1])  # any row layout: partitions x candidates
    ok = np.isfinite(scores).any(axis=1)
    scores = scores[ok]
    names = list(job.search.params)
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = _new_figure(4.2 * columns, 3.4 * rows)
    for position, name in enumerate(names, start=1):
        ax = fig.add_subplot(rows, columns, position)
        values = np.asarray(surface[f"param_{name}"].values)
        numeric = values.dtype.kind == "f"
        grid = grid_values(job, name)
        if numeric:
            levels: list[Any] = sorted(set(values[np.isfinite(values)].tolist()))
        else:
            seen = [str(v) for v in grid] if grid is not None else []
            levels = [v for v in dict.fromkeys([*seen, *values.astype(str)]) if v in values]
        low, mid, high = _bands([profile(scores, values, v) for v in levels])
        x = np.asarray(levels, dtype=float) if numeric else np.arange(len(levels))
        if grid is None or not numeric:  # random draws, or categories: no line between them
            ax.errorbar(x, mid, yerr=[mid - low, high - mid], fmt="o", ms=3, color="#1d3557")
        else:
            ax.fill_between(x, low, high, color="#a8dadc", alpha=0.6, label="10-90%")
            ax.plot(x, mid, "o-", color="#1d3557", label="median")
        if numeric and x.size and x.min() > 0 and x.max() / x.min() >= 10:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(x, levels, rotation=30 if len(levels) > 6 else 0)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("value")
        ax.set_ylabel(f"cv {refit}")
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Cross-validated {refit} against each parameter ({int(ok.sum())} partitions ok)")
    _save(fig, path)


def _bands(profiles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 10th, 50th and 90th percentiles of each profile over the partitions (NaN when none
    is finite)."""
    out = np.full((3, len(profiles)), np.nan)
    for i, values in enumerate(profiles):
        finite = values[np.isfinite(values)]
        if finite.size:
            out[:, i] = np.percentile(finite, [10, 50, 90])
    return out[0], out[1], out[2]
