"""The report's figures: maps of the results over the cells, the chosen parameter values, the
score against the training rows and the search times, drawn with matplotlib's Agg canvas
directly (no pyplot, no global backend change)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..spec import Job
from .layout import CellLayout
from .targets import first_target_metric

#: Metrics where lower is better: their maps use the reversed colour map, so that the same
#: colour means "good" on every map.
LOWER_IS_BETTER = ("rmse", "mae", "mse", "error", "fit_seconds")

#: Scorers bounded by 0 and 1 (a classifier's accuracy, f1, roc_auc, ...): their maps span
#: [0, 1], so that 0.95 does not look poor beside 0.97, and maps of different runs compare.
UNIT_INTERVAL = ("accuracy", "f1", "roc_auc", "precision", "recall", "jaccard")

STATUS_COLORS = {"ok": "#2a9d8f", "skipped": "#9e9e9e", "failed": "#d62828", "pending": "#f4a261"}


def _new_figure(width: float = 7.0, height: float = 5.0) -> Any:
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png", dpi=100)


def lower_is_better(name: str) -> bool:
    """Whether smaller values of ``name`` are better (its map's colours are reversed)."""
    return any(word in name.lower() for word in LOWER_IS_BETTER) and not name.startswith("neg_")


def score_limits(scorer: str) -> tuple[float, float] | None:
    """(0, 1) for a scorer bounded by 0 and 1 (``f1_macro``, ``test_roc_auc``), else None."""
    name = scorer.lower().removeprefix("test_")
    bounded = any(word in name for word in UNIT_INTERVAL) and not name.startswith("neg_")
    return (0.0, 1.0) if bounded else None


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
    layout: CellLayout,
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


def _extent(layout: CellLayout) -> tuple[float, float, float, float] | None:
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


def _stretch(layout: CellLayout) -> float:
    """Horizontal stretch of a map: 1/cos(latitude), so that distances on the ground look
    equal in both directions at the map's mean latitude."""
    if not layout.geographic or layout.y is None:
        return 1.0
    finite = layout.y[np.isfinite(layout.y)]
    mean_lat = float(np.clip(finite.mean(), -80, 80)) if finite.size else 0.0
    return 1 / math.cos(math.radians(mean_lat))


def _map_figure(layout: CellLayout, colorbar: bool = True) -> Any:
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


def _frame(ax: Any, layout: CellLayout) -> None:
    ax.set_xlabel(layout.x_label)
    ax.set_ylabel(layout.y_label)
    ax.grid(True, alpha=0.3)
    extent = _extent(layout)
    if extent is not None:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        if layout.geographic:
            ax.set_aspect(_stretch(layout), adjustable="box")


def draw_status_map(layout: CellLayout, status: np.ndarray, path: Path) -> None:
    """Each cell coloured by its partition's status: drawn when some partition is not ok."""
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


def grid_values(job: Job, name: str) -> list[Any] | None:
    """The values of parameter ``name``'s grid, or None when it is drawn from a distribution."""
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
        grid = grid_values(job, name)
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
    """The best score (and the test r2) against the training rows: whether small partitions
    score worse."""
    status = np.asarray(results["status"].values).astype(str)
    ok = status == "ok"
    n_train = np.asarray(results["n_train"].values, dtype=float)
    panels = [("best_score", f"cross-validated {job.search.refit_metric} (best candidate)")]
    refit_test = f"test_{job.search.refit_metric}"  # a classifier's test metrics: its scorers
    name = first_target_metric(results, "test_r2") or first_target_metric(results, refit_test)
    if name is not None:  # several targets: the first target's
        panels.append((name, f"{name[5:]} on the test period"))
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
    """A histogram of the search time per partition, with the core-hours in all."""
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
