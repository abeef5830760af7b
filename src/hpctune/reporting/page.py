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
- ``index.html``: the figures with the run's metadata (spec, versions, job ids, times), rendered
  from ``templates/report.html.j2``. :func:`page_context` reads the clock and the disk;
  :func:`render_index` is a pure function of that context.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from ..errors import UsageError
from ..output.folder import Store
from ..output.grid import rows as result_rows
from ..output.status import STATUSES, StatusCounts
from ..progress import fit_time_text
from ..spec import DataSpec, Job, PartitionSpec, SearchSpec
from ..submission.render import package_template_dir
from .figures import (
    draw_fit_seconds,
    draw_map,
    draw_params,
    draw_score_vs_n_train,
    draw_status_map,
    grid_values,
    lower_is_better,
    score_limits,
)
from .layout import cell_layout
from .surface import surface_figures
from .targets import split_targets

REPORT_DIR = "report"
PAGE_TEMPLATE = "report.html.j2"


@dataclass
class Figure:
    """One PNG of the report and the words the page shows beside it."""

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
        """The page that shows the figures."""
        return self.folder / "index.html"

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``hpctune report``."""
        return {
            "folder": str(self.folder),
            "index": str(self.index),
            "figures": [
                {"file": str(self.folder / f.name), "title": f.title} for f in self.figures
            ],
            "spec_changed": self.spec_changed,
        }


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
        results = split_targets(result_rows(opened.load()))  # rows; test_*_<target>
    manifest = store.manifest() or {}
    changed = store.changed_keys(job)
    if changed:  # the results are drawn as what they are: the other spec's
        job = _results_spec(job, results)
    target = Path(folder) if folder is not None else store.root / REPORT_DIR
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        figures = draw_all(job, results, manifest, staging)
        figures += [Figure(*f) for f in surface_figures(job, store.root, staging)]
        context = page_context(job, results, manifest, figures, _jobs(store.root), changed)
        page = render_index(context)
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


def draw_all(job: Job, results: Any, manifest: dict[str, Any], folder: Path) -> list[Figure]:
    """Draw every figure of ``results`` into ``folder``; the figures in the page's order."""
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
        lower = lower_is_better(name) or (
            kind == "score" and lower_is_better(job.search.refit_metric)
        )
        limits = (
            None
            if kind == "param"
            else score_limits(job.search.refit_metric if kind == "score" else name)
        )
        if kind == "param":
            grid = grid_values(job, name[5:])
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


def _where(where: Any) -> str:
    """``data.where`` as the report names it: the mask variable, or the box."""
    if isinstance(where, str):
        return where
    return ", ".join(f"{name} in [{low:g}, {high:g}]" for name, (low, high) in where.items())


def _short_time(value: Any) -> str:
    """``2007-01-02T00:00:00.000000000`` -> ``2007-01-02T00:00:00``."""
    text = "?" if value is None else str(value)
    head, dot, fraction = text.partition(".")
    return head if dot and set(fraction) <= set("0") else text


def page_context(
    job: Job,
    results: Any,
    manifest: dict[str, Any],
    figures: list[Figure],
    jobs: list[dict[str, Any]],
    spec_changed: list[str] | None = None,
    *,
    generated: str | None = None,
) -> dict[str, Any]:
    """What the page shows, as plain values: the clock (``generated``, now unless given) and
    the partition logs' times are read here, so that :func:`render_index` reads nothing."""
    import yaml

    status = np.asarray(results["status"].values).astype(str)
    counts = StatusCounts.from_results(results)
    total = counts.total
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
            + (f"; test period from {job.data.test.start:%Y-%m-%d}" if job.data.test else "")
            + (f"; trained on {job.data.train.describe()}" if job.data.train else "")
            + (f"; cells where {_where(job.data.where)}" if job.data.where else ""),
        ),
        ("inputs → target", f"{', '.join(job.data.inputs)} → {', '.join(job.data.targets)}"),
        ("partition by", job.partition.by),
        ("estimator", " → ".join(job.search.estimator)),
        (
            "search",
            f"{job.search.method}, cv {job.search.cv.kind}, refit {job.search.refit_metric}",
        ),
    ]
    reasons = Counter(
        (s, r)
        for s, r in zip(status, np.asarray(results["reason"].values).astype(str), strict=True)
        if s != "ok"
    )
    return {
        "name": job.name,
        "spec_changed": list(spec_changed or []),
        "total": int(total),
        "unit": "partitions" if "partition" in results.dims else "cells",
        "counts": {name: counts.count(name) for name in STATUSES},
        "count_rows": [
            (name, f"{counts.count(name)} ({counts.share(name):.1%})" if total else "0")
            for name in STATUSES
        ],
        "generated": generated or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "version": str(results.attrs.get("hpctune_version", "")),
        "about": [(k, str(v)) for k, v in about],
        "times": _run_times(job.output_dir, results, manifest),
        "versions": [(str(k), str(v)) for k, v in sorted((manifest.get("versions") or {}).items())],
        "figures": [{"name": f.name, "title": f.title, "caption": f.caption} for f in figures],
        "jobs": [
            [
                str(j.get(key) if j.get(key) is not None else "")
                for key in ("job_id", "role", "scheduler", "submitted", "script")
            ]
            for j in jobs
        ],
        "reasons": [(s, n, r) for (s, r), n in reasons.most_common(20)],
        "spec_text": yaml.safe_dump(job.to_dict(), sort_keys=False, allow_unicode=True),
    }


def _environment() -> jinja2.Environment:
    """The shipped templates, every value HTML-escaped."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(package_template_dir())),
        autoescape=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render_index(context: dict[str, Any]) -> str:
    """The report page: a pure function of :func:`page_context`'s values (every one
    HTML-escaped by the template's autoescape)."""
    return _environment().get_template(PAGE_TEMPLATE).render(context)
