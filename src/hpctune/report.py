"""``hpctune report``: PNG figures and an ``index.html`` from a job's results.nc.

``<output>/report/`` holds:

- ``map_<variable>.png``: a map of ``best_score``, of each ``test_<metric>``, of each numeric
  ``best_<param>`` and, when some partitions are not ``ok``, of the status, drawn over the cells'
  coordinates. Latitude and longitude become a scatter of the cells (no coastlines: nothing
  beyond matplotlib is needed), a full lat/lon grid an image; without coordinates the values are
  drawn against the cell index. Grouped partitions colour each of their cells.
- ``params.png``: how often each parameter value was chosen.
- ``score_vs_n_train.png``: the cross-validated (and test) score against the training rows.
- ``fit_seconds.png``: the distribution of the search time per partition.
- ``index.html``: the figures with the run's metadata (spec, versions, job ids, times).

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, no global backend change).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data.inspect import space_coordinates
from .data.partitions import cell_groups, dataset_partitioning
from .data.source import open_dataset
from .errors import UsageError
from .output.folder import Store
from .output.status import STATUSES, StatusCounts
from .progress import fit_time_text
from .spec import DataSpec, Job, PartitionSpec, SearchSpec

REPORT_DIR = "report"

#: Metrics where lower is better: their maps use the reversed colour map, so that the same
#: colour means "good" on every map.
LOWER_IS_BETTER = ("rmse", "mae", "mse", "error", "fit_seconds")

LAT_NAMES = ("lat", "latitude", "nav_lat", "lats")
LON_NAMES = ("lon", "longitude", "nav_lon", "lons", "long")

STATUS_COLORS = {"ok": "#2a9d8f", "skipped": "#9e9e9e", "failed": "#d62828", "pending": "#f4a261"}


@dataclass
class Figure:
    name: str
    """File name inside the report folder."""
    title: str
    caption: str


@dataclass
class Report:
    """What ``report`` wrote."""

    folder: Path
    figures: list[Figure] = field(default_factory=list)
    spec_changed: list[str] = field(default_factory=list)
    """Keys that decide results in which the spec differs from that of the results drawn
    (drawn as that spec's, the page says so); empty when they are this spec's."""

    @property
    def index(self) -> Path:
        return self.folder / "index.html"

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "index": str(self.index),
            "figures": [
                {"file": str(self.folder / f.name), "title": f.title} for f in self.figures
            ],
            "spec_changed": self.spec_changed,
        }


# --------------------------------------------------------------------------- cell layout


@dataclass
class Layout:
    """Where each cell is drawn, and which results row it takes its value from."""

    x: np.ndarray | None
    y: np.ndarray | None
    x_label: str
    y_label: str
    geographic: bool
    row_of_cell: np.ndarray
    """Results row (partition) of each cell; -1 for a cell no partition holds."""
    grid_shape: tuple[int, int] | None = None
    """(ny, nx) when the cells are a full grid in C order: drawn as an image."""
    unit: str = "cell"

    @property
    def n_cells(self) -> int:
        return int(self.row_of_cell.size)


def _is_lat(name: str, attrs: dict[str, Any]) -> bool:
    return (
        name.lower() in LAT_NAMES
        or attrs.get("standard_name") == "latitude"
        or str(attrs.get("units", "")).lower() in ("degrees_north", "degree_north", "degrees_n")
    )


def _is_lon(name: str, attrs: dict[str, Any]) -> bool:
    return (
        name.lower() in LON_NAMES
        or attrs.get("standard_name") == "longitude"
        or str(attrs.get("units", "")).lower() in ("degrees_east", "degree_east", "degrees_e")
    )


def _pick_axes(
    coords: dict[str, tuple[np.ndarray, dict[str, Any]]],
) -> tuple[str, str, bool] | None:
    """(x name, y name, geographic) from the cells' coordinates, or None."""
    numeric = {
        name: attrs
        for name, (values, attrs) in coords.items()
        if np.issubdtype(np.asarray(values).dtype, np.number)
    }
    lat = next((n for n, a in numeric.items() if _is_lat(n, a)), None)
    lon = next((n for n, a in numeric.items() if _is_lon(n, a) and n != lat), None)
    if lat and lon:
        return lon, lat, True
    lowered = {n.lower(): n for n in numeric}
    if "x" in lowered and "y" in lowered:
        return lowered["x"], lowered["y"], False
    return None


def _grid_shape(
    x: np.ndarray, y: np.ndarray, space_sizes: list[int] | None
) -> tuple[int, int] | None:
    """(ny, nx) if the cells are a full y-by-x grid flattened in C order (or x-by-y)."""
    if not space_sizes or len(space_sizes) != 2:
        return None
    ny, nx = space_sizes
    if ny * nx != x.size or ny < 2 or nx < 2:
        return None
    xs, ys = x.reshape(ny, nx), y.reshape(ny, nx)
    if np.allclose(xs, xs[:1], equal_nan=True) and np.allclose(ys, ys[:, :1], equal_nan=True):
        return ny, nx
    return None


def cell_layout(job: Job, results: Any, manifest: dict[str, Any]) -> Layout:
    """The layout of the results' cells: from results.nc itself (one partition per cell) or,
    for grouped partitions, from the data's coordinates and group variable (metadata only)."""
    sizes = list((manifest.get("data") or {}).get("space", {}).values()) or None
    if "space" in results.dims:
        n = int(results.sizes["space"])
        coords = {
            str(name): (np.asarray(var.values), dict(var.attrs))
            for name, var in results.coords.items()
            if var.dims == ("space",)
        }
        rows = np.arange(n)
        unit = "cell"
    else:
        coords, rows = _group_cells(job, results)
        n = rows.size
        unit = "partition"
    picked = _pick_axes(coords) if coords else None
    if picked is None:
        return Layout(None, None, "cell index", "", False, rows, unit=unit)
    xname, yname, geographic = picked
    x = np.asarray(coords[xname][0], dtype=float)
    y = np.asarray(coords[yname][0], dtype=float)
    if geographic:
        x = np.where(x > 180, x - 360, x)
    x_label = "longitude (°E)" if geographic else _label(xname, coords[xname][1])
    y_label = "latitude (°N)" if geographic else _label(yname, coords[yname][1])
    return Layout(x, y, x_label, y_label, geographic, rows, _grid_shape(x, y, sizes), unit)


def _label(name: str, attrs: dict[str, Any]) -> str:
    units = attrs.get("units")
    return f"{name} ({units})" if units else name


def _group_cells(
    job: Job, results: Any
) -> tuple[dict[str, tuple[np.ndarray, dict[str, Any]]], np.ndarray]:
    """Coordinates of every cell and the results row of its group (-1: in no group)."""
    try:
        ds = open_dataset(job.data)
    except Exception:  # the data moved: draw the groups against their index instead
        labels = results[next(iter(results.dims))].values
        return {}, np.arange(len(labels))
    try:
        groups = dataset_partitioning(job, ds)
        coords = space_coordinates(ds, tuple(job.data.space))
    finally:
        ds.close()
    return coords, cell_groups(groups, list(results["partition"].values))


# --------------------------------------------------------------------------- figures


def _new_figure(width: float = 7.0, height: float = 5.0) -> Any:
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png", dpi=100)


def _lower_is_better(name: str) -> bool:
    return any(word in name.lower() for word in LOWER_IS_BETTER) and not name.startswith("neg_")


def _color_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [2, 98]) if finite.size > 20 else (finite.min(), finite.max())
    if low == high:
        low, high = low - 0.5 * (abs(low) or 1), high + 0.5 * (abs(high) or 1)
    return float(low), float(high)


def _marker_size(n: int) -> float:
    return float(np.clip(30000 / max(n, 1), 4, 400))


def draw_map(
    layout: Layout,
    values: np.ndarray,
    status: np.ndarray,
    title: str,
    label: str,
    path: Path,
    *,
    cmap: str = "viridis",
    log: bool = False,
    limits: tuple[float, float] | None = None,
) -> None:
    """One variable of the results over the cells: ``values`` and ``status`` per results row."""
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import MaxNLocator

    rows = layout.row_of_cell
    assigned = rows >= 0
    cell_values = np.full(layout.n_cells, np.nan)
    cell_values[assigned] = values[rows[assigned]]
    cell_status = np.full(layout.n_cells, "none", dtype=object)
    cell_status[assigned] = status[rows[assigned]]
    low, high = limits if limits is not None else _color_range(cell_values)
    if log and low > 0:
        norm: Any = LogNorm(low, high)
    else:
        norm = Normalize(low, high)
    fig = _map_figure(layout)
    ax = fig.add_subplot()
    ax.set_title(title)
    if layout.x is None:
        index = np.arange(layout.n_cells)
        good = np.isfinite(cell_values)
        ax.scatter(index[good], cell_values[good], c=cell_values[good], cmap=cmap, norm=norm, s=20)
        _mark_missing(ax, index[~good], np.full((~good).sum(), low), cell_status[~good])
        ax.set_xlabel(f"{layout.unit} index (the data has no coordinates)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    else:
        x, y = layout.x, layout.y
        if layout.grid_shape is not None:
            ny, nx = layout.grid_shape
            image = ax.pcolormesh(
                x.reshape(ny, nx),
                y.reshape(ny, nx),
                np.ma.masked_invalid(cell_values.reshape(ny, nx)),
                cmap=cmap,
                norm=norm,
                shading="nearest",
            )
        else:
            good = np.isfinite(cell_values)
            image = ax.scatter(
                x[good],
                y[good],
                c=cell_values[good],
                cmap=cmap,
                norm=norm,
                s=_marker_size(layout.n_cells),
                edgecolors="black" if layout.n_cells <= 200 else "none",
                linewidths=0.5,
            )
            if layout.n_cells <= 30:
                for xi, yi, vi in zip(x[good], y[good], cell_values[good], strict=True):
                    ax.annotate(
                        f"{vi:.3g}",
                        (xi, yi),
                        xytext=(0, 11),
                        textcoords="offset points",
                        ha="center",
                        fontsize=8,
                    )
        missing = ~np.isfinite(cell_values)
        _mark_missing(ax, x[missing], y[missing], cell_status[missing])
        fig.colorbar(image, ax=ax, label=label, shrink=0.85)
        _frame(ax, layout)
    _save(fig, path)


def _mark_missing(ax: Any, x: np.ndarray, y: np.ndarray, status: np.ndarray) -> None:
    """Cells without a value: grey crosses (skipped), red (failed), orange (pending)."""
    for name in ("skipped", "failed", "pending", "ok", "none"):
        chosen = status == name
        if chosen.any():
            ax.scatter(
                x[chosen],
                y[chosen],
                marker="x",
                s=24,
                color=STATUS_COLORS.get(name, "#bdbdbd"),
                label=f"{name} ({int(chosen.sum())})" if name != "none" else "in no partition",
            )
    if status.size:
        _legend_below(ax, title="no value")


def _legend_below(ax: Any, title: str | None = None) -> None:
    """A legend under the axes, where it hides no cell."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncols=min(len(labels), 4) or 1,
        fontsize=8,
        title=title,
        title_fontsize=8,
        frameon=False,
    )


def _extent(layout: Layout) -> tuple[float, float, float, float] | None:
    """(x0, x1, y0, y1) of the cells with a margin, or None without coordinates."""
    if layout.x is None or layout.y is None:
        return None
    x, y = layout.x, layout.y
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return None
    x0, x1 = float(x[finite].min()), float(x[finite].max())
    y0, y1 = float(y[finite].min()), float(y[finite].max())
    pad_x = max(0.08 * (x1 - x0), 0.5 if layout.geographic else 0.0) or 1.0
    pad_y = max(0.08 * (y1 - y0), 0.5 if layout.geographic else 0.0) or 1.0
    return x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y


def _stretch(layout: Layout) -> float:
    """Horizontal stretch of a map: 1/cos(latitude), so that distances on the ground look
    equal in both directions at the map's mean latitude."""
    if not layout.geographic or layout.y is None:
        return 1.0
    finite = layout.y[np.isfinite(layout.y)]
    mean_lat = float(np.clip(finite.mean(), -80, 80)) if finite.size else 0.0
    return 1 / math.cos(math.radians(mean_lat))


def _map_figure(layout: Layout, colorbar: bool = True) -> Any:
    """A figure shaped like the map (plus room for the colour bar)."""
    extent = _extent(layout)
    if extent is None:
        return _new_figure(7.0, 4.5)
    x0, x1, y0, y1 = extent
    ratio = (x1 - x0) / ((y1 - y0) * _stretch(layout))
    extra = 1.8 if colorbar else 1.0
    height = 5.0
    width = float(np.clip(height * ratio + extra, 5.0, 12.0))
    if height * ratio + extra > 12.0:
        height = float(np.clip((12.0 - extra) / ratio, 3.0, 5.0))
    return _new_figure(width, height + 0.6)


def _frame(ax: Any, layout: Layout) -> None:
    ax.set_xlabel(layout.x_label)
    ax.set_ylabel(layout.y_label)
    ax.grid(True, alpha=0.3)
    extent = _extent(layout)
    if extent is not None:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        if layout.geographic:
            ax.set_aspect(_stretch(layout), adjustable="box")


def draw_status_map(layout: Layout, status: np.ndarray, path: Path) -> None:
    rows = layout.row_of_cell
    cell_status = np.full(layout.n_cells, "none", dtype=object)
    cell_status[rows >= 0] = status[rows[rows >= 0]]
    fig = _map_figure(layout, colorbar=False)
    ax = fig.add_subplot()
    ax.set_title(f"Status per {layout.unit}")
    if layout.x is None:
        x, y = np.arange(layout.n_cells), np.zeros(layout.n_cells)
        ax.set_yticks([])
        ax.set_xlabel(f"{layout.unit} index (the data has no coordinates)")
    else:
        x, y = layout.x, layout.y
    for name in (*STATUS_COLORS, "none"):
        chosen = cell_status == name
        if chosen.any():
            ax.scatter(
                x[chosen],
                y[chosen],
                s=_marker_size(layout.n_cells),
                color=STATUS_COLORS.get(name, "#e0e0e0"),
                label=f"{name} ({int(chosen.sum())})" if name != "none" else "in no partition",
                marker="s" if layout.grid_shape else "o",
            )
    _legend_below(ax)
    if layout.x is not None:
        _frame(ax, layout)
    _save(fig, path)


def _grid_values(job: Job, name: str) -> list[Any] | None:
    values = job.search.params.get(name)
    return list(values) if isinstance(values, list) else None


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def draw_params(job: Job, results: Any, path: Path) -> None:
    """Bar charts of how often each grid value was chosen; histograms for distributions."""
    from matplotlib.ticker import MaxNLocator

    names = list(job.search.params)
    ok = np.asarray(results["status"].values).astype(str) == "ok"
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = _new_figure(4.2 * columns, 3.4 * rows)
    for position, name in enumerate(names, start=1):
        ax = fig.add_subplot(rows, columns, position)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel("partitions")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        chosen = np.asarray(results[f"best_{name}"].values)[ok]
        grid = _grid_values(job, name)
        if grid is not None:
            labels = [_format_value(v) for v in grid]
            if chosen.dtype.kind == "f":
                counts = [int(np.isclose(chosen, float(v)).sum()) for v in grid]
            else:
                texts = chosen.astype(str)
                counts = [int((texts == str(v)).sum()) for v in grid]
            ax.bar(range(len(labels)), counts, color="#457b9d")
            ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 6 else 0)
            ax.set_xlabel("value (every value of the grid)")
        else:
            finite = chosen[np.isfinite(chosen.astype(float))].astype(float)
            spec = job.search.params[name]
            log = isinstance(spec, dict) and "loguniform" in spec
            if finite.size:
                bins: Any = 20
                if log and finite.min() > 0:
                    bins = np.geomspace(finite.min(), finite.max() * 1.0001, 21)
                    ax.set_xscale("log")
                ax.hist(finite, bins=bins, color="#457b9d")
            ax.set_xlabel("value (drawn by the random search)")
    fig.suptitle(f"Chosen parameter values ({int(ok.sum())} partitions ok)")
    _save(fig, path)


def draw_score_vs_n_train(job: Job, results: Any, path: Path) -> None:
    status = np.asarray(results["status"].values).astype(str)
    ok = status == "ok"
    n_train = np.asarray(results["n_train"].values, dtype=float)
    panels = [("best_score", f"cross-validated {job.search.refit_metric} (best candidate)")]
    if "test_r2" in results:
        panels.append(("test_r2", "r2 on the test period"))
    fig = _new_figure(5.0 * len(panels), 4.2)
    for position, (name, label) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), position)
        values = np.asarray(results[name].values, dtype=float)
        good = ok & np.isfinite(values)
        ax.scatter(n_train[good], values[good], s=18, color="#1d3557", alpha=0.7)
        ax.set_xlabel("training rows (n_train)")
        ax.set_ylabel(label)
        ax.set_title(f"{name} vs n_train", fontsize=10)
        ax.grid(True, alpha=0.3)
    _save(fig, path)


def draw_fit_seconds(results: Any, path: Path) -> None:
    seconds = np.asarray(results["fit_seconds"].values, dtype=float)
    seconds = seconds[np.isfinite(seconds)]
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    if seconds.size:
        ax.hist(seconds, bins=min(30, max(5, seconds.size // 2)), color="#e76f51")
        ax.axvline(
            seconds.mean(), color="black", linestyle="--", label=f"mean {seconds.mean():.3g} s"
        )
        ax.legend(fontsize=8)
    ax.set_xlabel("seconds per search (refit included)")
    ax.set_ylabel("partitions")
    ax.set_title(f"Search time per partition ({seconds.sum() / 3600:.3g} core-hours in all)")
    _save(fig, path)


# --------------------------------------------------------------------------- the report


def write_report(job: Job, folder: str | Path | None = None) -> Report:
    """Draw the figures of ``job``'s results.nc and write ``index.html`` (default folder
    ``<output>/report``, replaced as a whole)."""
    import xarray as xr

    store = Store(job.output_dir)
    if not store.results_path.exists():
        raise UsageError(
            f"no results yet: {store.results_path} does not exist (run the job, or merge the "
            "partitions of an array with hpctune merge)"
        )
    with xr.open_dataset(store.results_path) as opened:
        results = opened.load()
    manifest = store.manifest() or {}
    changed = store.changed_keys(job)
    if changed:  # the results are drawn as what they are: the other spec's
        job = _results_spec(job, results)
    target = Path(folder) if folder is not None else store.root / REPORT_DIR
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        figures = _draw_all(job, results, manifest, staging)
        page = render_index(job, results, manifest, figures, _jobs(store.root), changed)
        (staging / "index.html").write_text(page, encoding="utf-8")
        os.chmod(staging, 0o755)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Report(folder=target, figures=figures, spec_changed=changed)


def _results_spec(job: Job, results: Any) -> Job:
    """``job`` with the sections that decide results (data, partition, search) of the spec
    that computed ``results`` (its ``hpctune_spec``); ``job`` itself if that cannot be read."""
    try:
        spec = json.loads(results.attrs["hpctune_spec"])
        return job.model_copy(
            update={
                "data": DataSpec.model_validate(spec["data"]),
                "partition": PartitionSpec.model_validate(spec["partition"]),
                "search": SearchSpec.model_validate(spec["search"]),
            }
        )
    except (KeyError, TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        return job


def _draw_all(job: Job, results: Any, manifest: dict[str, Any], folder: Path) -> list[Figure]:
    layout = cell_layout(job, results, manifest)
    status = np.asarray(results["status"].values).astype(str)
    figures: list[Figure] = []
    where = (
        "over the cells' latitude and longitude (a scatter of the cells, no coastlines)"
        if layout.geographic and layout.grid_shape is None
        else "over the latitude/longitude grid"
        if layout.geographic
        else "against the cell index"
        if layout.x is None
        else f"over {layout.x_label} and {layout.y_label}"
    )
    grouped = " Each cell has the value of its group." if "partition" in results.dims else ""
    maps = [("best_score", f"Best cross-validated {job.search.refit_metric}", "score")]
    for name in results.data_vars:
        name = str(name)
        if name.startswith("test_"):
            maps.append((name, f"Test-period {name[5:]} of the best model", "test"))
    for name in job.search.params:
        var = f"best_{name}"
        if var in results and np.asarray(results[var].values).dtype.kind == "f":
            maps.append((var, f"Chosen {name}", "param"))
    for name, title, kind in maps:
        values = np.asarray(results[name].values, dtype=float)
        lower = _lower_is_better(name) or (
            kind == "score" and _lower_is_better(job.search.refit_metric)
        )
        limits = None
        if kind == "param":
            grid = _grid_values(job, name[5:])
            finite = np.asarray(grid, dtype=float) if grid else values[np.isfinite(values)]
            if finite.size and finite.min() < finite.max():
                limits = (float(finite.min()), float(finite.max()))
        log = limits is not None and limits[0] > 0 and limits[1] / limits[0] >= 10
        file = f"map_{name}.png"
        draw_map(
            layout,
            values,
            status,
            f"{title} per {layout.unit}" if layout.unit == "cell" else title,
            name,
            folder / file,
            cmap="viridis_r" if lower else "viridis",
            log=log,
            limits=limits,
        )
        better = (
            ""
            if kind == "param"
            else (" Yellow is better (lower is better)." if lower else " Yellow is better.")
        )
        figures.append(Figure(file, title, f"{name} {where}.{better}{grouped}"))
    if (status != "ok").any():
        draw_status_map(layout, status, folder / "map_status.png")
        figures.append(
            Figure("map_status.png", "Status", f"ok, skipped, failed or pending {where}.")
        )
    draw_params(job, results, folder / "params.png")
    figures.append(
        Figure(
            "params.png",
            "Chosen parameter values",
            "How many partitions chose each value of the searched parameters.",
        )
    )
    draw_score_vs_n_train(job, results, folder / "score_vs_n_train.png")
    figures.append(
        Figure(
            "score_vs_n_train.png",
            "Score vs training rows",
            "The best candidate's score against the number of valid training rows.",
        )
    )
    draw_fit_seconds(results, folder / "fit_seconds.png")
    figures.append(
        Figure(
            "fit_seconds.png",
            "Search time",
            "Wall seconds of each partition's search on one worker (refit included).",
        )
    )
    return figures


def _jobs(root: Path) -> list[dict[str, Any]]:
    """Scheduler jobs recorded by ``hpctune submit`` (``jobs.json``), if any."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((root / "jobs.json").read_text())
        jobs = data.get("jobs") if isinstance(data, dict) else None
        if isinstance(jobs, list):
            return [j for j in jobs if isinstance(j, dict)]
    return []


def _run_times(root: Path, results: Any, manifest: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("first run started", str(manifest.get("created", "?")))]
    logs = list((root / "parts").glob("*.log")) if (root / "parts").is_dir() else []
    if logs:
        last = max(p.stat().st_mtime for p in logs)
        stamp = dt.datetime.fromtimestamp(last, dt.UTC).isoformat(timespec="seconds")
        rows.append(("last partition recorded", stamp))
    rows.append(("results.nc written", str(results.attrs.get("created", "?"))))
    fit = fit_time_text(results)
    if fit:
        rows.append(("search time", fit))
    nodes = sorted({str(n) for n in np.asarray(results["node"].values).astype(str) if n})
    if nodes:
        shown = ", ".join(nodes[:8]) + (f" and {len(nodes) - 8} more" if len(nodes) > 8 else "")
        rows.append(("nodes", shown))
    return rows


def _short_time(value: Any) -> str:
    """``2007-01-02T00:00:00.000000000`` -> ``2007-01-02T00:00:00``."""
    text = "?" if value is None else str(value)
    head, dot, fraction = text.partition(".")
    return head if dot and set(fraction) <= set("0") else text


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def render_index(
    job: Job,
    results: Any,
    manifest: dict[str, Any],
    figures: list[Figure],
    jobs: list[dict[str, Any]],
    spec_changed: list[str] | None = None,
) -> str:
    """The report page: a pure function of its inputs (every value HTML-escaped)."""
    import yaml

    e = html.escape
    status = np.asarray(results["status"].values).astype(str)
    counts = StatusCounts.from_results(results)
    total = counts.total
    unit = "partitions" if "partition" in results.dims else "cells"
    count_rows = [
        (name, f"{counts.count(name)} ({counts.share(name):.1%})" if total else "0")
        for name in STATUSES
    ]
    data = manifest.get("data") or {}
    time_info = data.get("time") or {}
    about = [
        ("name", job.name),
        ("output", str(job.output_dir)),
        ("spec file", str(job.spec_path) if job.spec_path else "(given as a mapping)"),
        ("fingerprint", str(results.attrs.get("hpctune_fingerprint", job.fingerprint()))),
        ("data", ", ".join(job.data.paths)),
        (
            "space",
            " x ".join(f"{k}={v}" for k, v in (data.get("space") or {}).items()) or "?",
        ),
        (
            "time",
            f"{time_info.get('steps', '?')} steps, {_short_time(time_info.get('first'))} .. "
            f"{_short_time(time_info.get('last'))}"
            + (f"; test period from {job.data.test.start:%Y-%m-%d}" if job.data.test else ""),
        ),
        ("inputs → target", f"{', '.join(job.data.inputs)} → {job.data.target}"),
        ("partition by", job.partition.by),
        ("estimator", " → ".join(job.search.estimator)),
        (
            "search",
            f"{job.search.method}, cv {job.search.cv.kind}, refit {job.search.refit_metric}",
        ),
    ]
    versions = sorted((manifest.get("versions") or {}).items())
    reasons = Counter(
        (s, r)
        for s, r in zip(status, np.asarray(results["reason"].values).astype(str), strict=True)
        if s != "ok"
    )
    job_rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(str(j.get(key) if j.get(key) is not None else ''))}</td>"
            for key in ("job_id", "role", "scheduler", "submitted", "script")
        )
        + "</tr>"
        for j in jobs
    )
    jobs_html = (
        "<table><tr><th>job id</th><th>role</th><th>scheduler</th><th>submitted</th>"
        f"<th>script</th></tr>{job_rows}</table>"
        if jobs
        else "<p>No scheduler jobs recorded (run locally, or submitted outside hpctune).</p>"
    )
    reason_html = (
        "<table><tr><th>status</th><th>count</th><th>reason</th></tr>"
        + "".join(
            f"<tr><td>{e(s)}</td><td>{n}</td><td>{e(r)}</td></tr>"
            for (s, r), n in reasons.most_common(20)
        )
        + "</table>"
        if reasons
        else "<p>Every partition finished ok.</p>"
    )
    figure_html = "\n".join(
        f'<figure><img src="{e(f.name)}" alt="{e(f.title)}" width="700">'
        f"<figcaption><b>{e(f.title)}.</b> {e(f.caption)}</figcaption></figure>"
        for f in figures
    )
    spec_text = yaml.safe_dump(job.to_dict(), sort_keys=False, allow_unicode=True)
    changed_html = (
        '<p class="warning"><b>The spec has changed</b> since these results were computed '
        f"(changed: {e(', '.join(spec_changed))}): this page shows the results and the data, "
        "partition and search of the spec that computed them. <code>hpctune run --restart</code> "
        "computes the new spec's.</p>"
        if spec_changed
        else ""
    )
    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(job.name)}: hpctune report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1500px; color: #222;
       padding: 0 1em; }}
h1 {{ margin-bottom: 0.2em; }}
.meta {{ display: flex; flex-wrap: wrap; gap: 2em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left;
          vertical-align: top; }}
th {{ background: #f4f4f4; }}
.figures {{ display: flex; flex-wrap: wrap; gap: 1.5em; }}
figure {{ margin: 0; max-width: 700px; }}
figure img {{ max-width: 100%; height: auto; border: 1px solid #eee; }}
figcaption {{ font-size: 0.9em; color: #444; }}
pre {{ background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; }}
.warning {{ background: #fff3cd; border: 1px solid #d4a72c; padding: 0.5em 1em; }}
</style>
</head>
<body>
<h1>{e(job.name)}</h1>
{changed_html}
<p>{total} {unit}: {counts.ok} ok, {counts.skipped} skipped,
{counts.failed} failed, {counts.pending} pending.
Report generated {e(generated)} by hpctune {e(str(results.attrs.get("hpctune_version", "")))}.</p>
<div class="meta">
<section><h2>Run</h2>{_table(about)}</section>
<section><h2>Status</h2>{_table(count_rows)}<h2>Times</h2>
{_table(_run_times(job.output_dir, results, manifest))}</section>
<section><h2>Versions</h2>{_table(versions)}</section>
</div>
<h2>Figures</h2>
<div class="figures">
{figure_html}
</div>
<h2>Scheduler jobs</h2>
{jobs_html}
<h2>Partitions not ok</h2>
{reason_html}
<h2>Job spec</h2>
<p>With defaults filled in and paths resolved; the same as <code>hpctune validate --json</code>
shows.</p>
<pre>{e(spec_text)}</pre>
</body>
</html>
"""
