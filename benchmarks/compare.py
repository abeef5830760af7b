"""Side by side on the same data and grid: the ideal, the MOTrainer reference and hpctune.

    python benchmarks/compare.py [heavy] [tiny] [onecell] [memory] [--quick] [--cells N]
        [--breakdown 2,4,8,16]
        [--workdir DIR] [--cores 2] [--repeat 1] [--ideal-each] [--reference-modes sync,secede]
        [--timeout 1800] [--json-out FILE]

Presets (the data are generated under --workdir, default /tmp/hpctune-bench, if missing):

- ``heavy``: StandardScaler + SVR, svr__C [0.1, 1, 10] x svr__gamma [scale, 0.1], kfold 3,
  scoring r2, on 80 cells x 3000 steps in 4 files;
- ``tiny``: Ridge, alpha [1.0], kfold 2, on 4000 cells x 300 steps in 4 files: the cost of
  everything but the fits;
- ``onecell``: StandardScaler + SVR, 5 C x 5 gamma, kfold 3, on 1 cell x 8000 steps in 4 files:
  one search spread over the workers (threads, as chosen; for comparison, worker processes
  --repeat times, and the search as one task);
- ``memory``: hpctune only, the tiny search on 1000 and on 4000 cells x 8000 steps (4 files):
  peak resident memory, and its growth in MiB per MiB of added data (float32 values of the
  inputs and target).

Every preset holds out the last 20% of the time steps as the test period (the reference splits
at the same date with ``motrainer.train_test_split``). ``--quick`` shrinks every size for a smoke
run.

Each contestant runs as its own process, one after the other:

- ideal: ``benchmarks/ideal.py`` (serial scikit-learn CPU seconds of all fits and scores);
  its "wall" is that CPU time divided by --cores;
- reference: ``benchmarks/reference_motrainer.py`` with benchmarks/.venv's python, a
  LocalCluster of --cores workers x 1 thread, once per --reference-modes entry;
- hpctune: ``hpctune run SPEC --json --restart --set cluster.workers=C --set cluster.threads=1``,
  --repeat times.

On a machine whose speed drifts (other tenants), ``--ideal-each`` measures the ideal again
after every hpctune run and gives each run's efficiency against the ideals just before and
after it.

The table gives the wall seconds of the whole process (start-up and imports included; "inner"
is the time the program reports itself), cells per second, efficiency = ideal wall / wall, the
speed-up over the fastest reference; for a run of one partition (``onecell``) also "search s",
the search's own wall time from results.nc (``fit_seconds``: its graph built, fits, scores and
refit; no start-up, reading, test scores or model file) and "s.eff." = ideal wall / search s;
and the peak of the summed resident memory (RSS) of the
process and all its children, sampled every 0.1 s (pages shared between processes are counted
once per process). Efficiency and speed-up compare cells per second, since the reference may run
on the first cells only (``--reference-cells``; by default 400 of the 4000 of ``tiny``).
The reference's results are compared with hpctune's, cell by cell (best parameters, best cv
score, test r2); it runs with ``--copy-search`` for that (see reference_motrainer.py).
"busy" is the CPU time of the process tree divided by its wall time (cores kept busy); "others"
the CPU the rest of the machine used meanwhile, in cores: a noisy machine shows there.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_data  # noqa: E402

VENV_PYTHON = HERE / ".venv" / "bin" / "python"

SIZES = {
    # preset: (cells, steps, files), quick (cells, steps, files)
    "heavy": ((80, 3000, 4), (8, 1000, 2)),
    "tiny": ((4000, 300, 4), (200, 300, 2)),
    "onecell": ((1, 8000, 4), (1, 2000, 2)),
}
MEMORY_SIZES = (((1000, 8000, 4), (4000, 8000, 4)), ((100, 2000, 2), (400, 2000, 2)))
REFERENCE_CELLS = {"tiny": (400, 100)}
"""The reference runs on the first K cells only (its cost per cell is high): (full, quick)."""


# --------------------------------------------------------------------------- measuring


class Measured(dict):
    """wall, peak_rss_mib, peak_process_mib, cpu_seconds, others_cores, rc, stdout, timed_out."""


QUIET = {"load": None, "wait": 0.0}
"""Before each run, wait (at most ``wait`` seconds) for the 1-minute load average to fall below
``load`` (--quiet-load, --quiet-wait)."""


def wait_for_quiet() -> float:
    """Seconds waited for the machine to calm down (0 when not asked)."""
    load, limit = QUIET["load"], QUIET["wait"]
    if load is None:
        return 0.0
    started = time.monotonic()
    while os.getloadavg()[0] >= load and time.monotonic() - started < limit:
        time.sleep(5)
    return time.monotonic() - started


def measure(
    cmd: list[str],
    log: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    interval: float = 0.1,
) -> Measured:
    """Run ``cmd`` in its own process group; sample the RSS of its process tree."""
    log.parent.mkdir(parents=True, exist_ok=True)
    waited = wait_for_quiet()
    load_before = os.getloadavg()[0]
    out_path = log.with_suffix(".stdout")
    sys_before = psutil.cpu_times()
    started = time.perf_counter()
    with open(out_path, "wb") as out, open(log, "wb") as err:
        err.write((" ".join(cmd) + "\n").encode())
        err.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
        root = psutil.Process(proc.pid)
        peak = 0
        peak_one = 0
        cpu_seen: dict[int, float] = {}
        peak_of: dict[int, int] = {}
        timed_out = False
        while True:
            total = 0
            try:
                members = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                members = []
            for member in members:
                try:
                    with member.oneshot():
                        rss = member.memory_info().rss
                        times = member.cpu_times()
                    total += rss
                    peak_one = max(peak_one, rss)
                    peak_of[member.pid] = max(peak_of.get(member.pid, 0), rss)
                    cpu_seen[member.pid] = times.user + times.system
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    pass
            peak = max(peak, total)
            if proc.poll() is not None:
                break
            if time.perf_counter() - started > timeout:
                timed_out = True
                _stop_group(proc)
                break
            time.sleep(interval)
        proc.wait()
    wall = time.perf_counter() - started
    sys_after = psutil.cpu_times()
    busy = _busy(sys_after) - _busy(sys_before)
    tree_cpu = sum(cpu_seen.values())
    return Measured(
        cmd=cmd,
        wall=wall,
        peak_rss_mib=peak / 2**20,
        peak_process_mib=peak_one / 2**20,
        # the process started, then its children by decreasing peak (Dask workers and helpers)
        peak_by_process_mib=_per_process(peak_of, proc.pid),
        cpu_seconds=tree_cpu,
        busy_cores=tree_cpu / wall if wall > 0 else math.nan,
        others_cores=max(0.0, busy - tree_cpu) / wall if wall > 0 else math.nan,
        rc=proc.returncode,
        timed_out=timed_out,
        waited_for_quiet=round(waited, 1),
        load_before=round(load_before, 2),
        stdout=out_path.read_text(errors="replace"),
        log=str(log),
    )


def _per_process(peaks: dict[int, int], root: int) -> list[float]:
    """Peak MiB of ``root``, then of the other processes by decreasing peak."""
    others = sorted((v for k, v in peaks.items() if k != root), reverse=True)
    return [round(v / 2**20, 1) for v in (peaks.get(root, 0), *others)]


def _busy(times: Any) -> float:
    return sum(
        getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal")
    )


def _stop_group(proc: subprocess.Popen) -> None:
    """End the process group this script started for ``proc`` (SIGTERM, then SIGKILL)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _json_of(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except json.JSONDecodeError:
        return None


# --------------------------------------------------------------------------- contestants


def data_for(workdir: Path, preset: str, cells: int, steps: int, files: int) -> tuple[Path, Path]:
    """The data folder and the preset's spec in it (generated if missing)."""
    folder = workdir / f"data-{cells}x{steps}x{files}"
    make_data.ensure(cells, steps, files, folder, seed=0, verbose=True)
    spec = make_data.write_spec(preset, folder, folder / f"{preset}.yaml", steps)
    return folder, spec


def run_ideal(spec: Path, args: argparse.Namespace, logs: Path, n: int = 0) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "ideal.py"), str(spec), "--json", "--cores", str(args.cores)]
    if args.ideal_cells:
        cmd += ["--cells", str(args.ideal_cells)]
    m = measure(cmd, logs / (f"ideal-{n}.log" if n else "ideal.log"), args.timeout)
    result = _json_of(m["stdout"]) if m["rc"] == 0 else None
    return {"name": f"ideal #{n + 1}" if n else "ideal", **m, "result": result}


def run_reference(
    spec: Path, mode: str, args: argparse.Namespace, logs: Path, cells: int | None
) -> dict[str, Any]:
    python = Path(args.reference_python)
    results = logs / f"reference-{mode}.jsonl"
    cmd = [
        str(python),
        str(HERE / "reference_motrainer.py"),
        str(spec),
        "--json",
        "--workers",
        str(args.cores),
        "--inner",
        mode,
        "--results",
        str(results),
        "--copy-search",
    ]
    if cells:
        cmd += ["--cells", str(cells)]
    if args.save_models:
        cmd += ["--save-models", str(logs / f"reference-{mode}-models")]
    m = measure(cmd, logs / f"reference-{mode}.log", args.timeout)
    result = _json_of(m["stdout"]) if m["rc"] == 0 else None
    return {"name": f"reference ({mode})", **m, "result": result, "results_file": str(results)}


def run_hpctune(
    spec: Path,
    args: argparse.Namespace,
    logs: Path,
    rep: int,
    variant: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """``variant``: a ``cluster`` key and its value, e.g. ``("granularity", "partition")``."""
    exe = Path(sys.executable).parent / "hpctune"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "hpctune"]
    cmd = [
        *base,
        "run",
        str(spec),
        "--json",
        "--restart",
        "--set",
        f"cluster.workers={args.cores}",
        "--set",
        "cluster.threads=1",
    ]
    name = f"hpctune #{rep + 1}" if args.repeat > 1 else "hpctune"
    log = f"hpctune-{rep}.log"
    if variant:
        key, value = variant
        cmd += ["--set", f"cluster.{key}={value}"]
        name = f"hpctune ({key} {value})" + (f" #{rep + 1}" if args.repeat > 1 else "")
        log = f"hpctune-{key}-{value}-{rep}.log"
    m = measure(cmd, logs / log, args.timeout)
    result = _json_of(m["stdout"])
    ok = m["rc"] in (0, 3) and result is not None
    return {
        "name": name,
        **m,
        "result": result if ok else None,
        "search_seconds": search_seconds(spec) if ok else None,
    }


def run_breakdown(
    spec: Path, args: argparse.Namespace, logs: Path, workers: int, ideal_cpu: float | None
) -> dict[str, Any]:
    """One ``hpctune run`` on ``workers`` worker processes through ``breakdown.py``: where its
    CPU seconds go (--breakdown)."""
    out = logs / f"breakdown-{workers}.json"
    cmd = [sys.executable, str(HERE / "breakdown.py"), str(spec), "--workers", str(workers)]
    cmd += ["--json", str(out)]
    if ideal_cpu is not None:
        cmd += ["--ideal-cpu", f"{ideal_cpu:.3f}"]
    m = measure(cmd, logs / f"breakdown-{workers}.log", args.timeout)
    result = json.loads(out.read_text()) if m["rc"] == 0 and out.exists() else None
    return {"name": f"hpctune, {workers} workers", **m, "result": result, "breakdown": result}


def results_path(job: Any) -> Path:
    """The results.nc an hpctune run of ``job`` (a loaded spec) writes."""
    return Path(job.output) / "results.nc"


def search_seconds(spec: Path) -> float | None:
    """The search's own wall time when the run searched one partition: its ``fit_seconds``
    in results.nc, from building the search's graph to the refit's end (no start-up, no
    reading, no test scores or model file). ``None`` for runs of several partitions, whose
    searches overlap."""
    import xarray as xr

    import hpctune

    path = results_path(hpctune.load_spec(spec))
    if not path.exists():
        return None
    with xr.open_dataset(path) as ds:
        ok = ds["status"].values.astype(str) == "ok"
        seconds = ds["fit_seconds"].values[ok]
    return float(seconds[0]) if seconds.size == 1 else None


# --------------------------------------------------------------------------- results


def agreement(spec: Path, reference_file: str) -> dict[str, Any] | None:
    """How hpctune's results.nc and the reference's per-cell results agree."""
    import numpy as np
    import xarray as xr

    import hpctune

    job = hpctune.load_spec(spec)
    path = results_path(job)
    if not path.exists() or not Path(reference_file).exists():
        return None
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    refs = [json.loads(line) for line in Path(reference_file).read_text().splitlines() if line]
    names = list(job.search.params)
    same = compared = 0
    d_score: list[float] = []
    d_test: list[float] = []
    for rec in refs:
        i = rec["index"]
        if str(ds["status"].values[i]) != "ok":
            continue
        compared += 1
        ours = {n: ds[f"best_{n}"].values[i] for n in names if f"best_{n}" in ds}
        theirs = rec["best_params"]
        if all(_same_value(ours.get(n), theirs.get(n)) for n in names):
            same += 1
        if rec["best_score"] is not None:
            d_score.append(abs(float(ds["best_score"].values[i]) - rec["best_score"]))
        r2 = rec.get("test_scores", {}).get("r2")
        if r2 is not None and "test_r2" in ds:
            d_test.append(abs(float(ds["test_r2"].values[i]) - r2))
    return {
        "cells": len(refs),
        "compared": compared,
        "same_best_params": same,
        "max_abs_diff_best_score": float(np.max(d_score)) if d_score else None,
        "median_abs_diff_best_score": float(np.median(d_score)) if d_score else None,
        "max_abs_diff_test_r2": float(np.max(d_test)) if d_test else None,
    }


def _same_value(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if hasattr(a, "item"):
        a = a.item()
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    except (TypeError, ValueError):
        return str(a) == str(b)


def print_table(
    title: str, rows: list[dict[str, Any]], ideal_rate: float | None, reference_rate: float | None
) -> None:
    print(f"\n{title}")
    search = any(row.get("search_seconds") for row in rows)  # one partition: its search
    header = (
        f"{'run':<20} {'wall s':>9} {'inner s':>9} {'cells/s':>9} {'effic.':>7} "
        + (f"{'search s':>9} {'s.eff.':>6} " if search else "")
        + f"{'vs ref':>7} {'peak MiB':>9} {'busy':>5} {'others':>6}  note"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        wall = row.get("display_wall", row["wall"])
        failed = row["timed_out"] or row.get("result") is None
        inner = row.get("inner")
        rate = row["cells"] / wall if not failed and wall > 0 else None
        # The ideal wall of this row's cells: measured around this run (--ideal-each), or the
        # mean of the ideals measured.
        ideal = row.get("ideal_wall") or (row["cells"] / ideal_rate if ideal_rate else None)
        eff = ideal / wall if rate and ideal else None
        searched = row.get("search_seconds")
        search_eff = ideal / searched if searched and ideal else None
        speed = rate / reference_rate if rate and reference_rate else None
        note = row.get("note", "")
        if row["timed_out"]:
            note = f"stopped after {row['wall']:.0f} s (--timeout); " + note
        elif row.get("result") is None:
            note = f"failed (exit {row['rc']}, see {row['log']}); " + note
        search_cols = f"{_f(searched, 9, 1)} {_f(search_eff, 6, 2)} " if search else ""
        print(
            f"{row['name']:<20} {_f(wall, 9, 1)} {_f(inner, 9, 1)} "
            f"{_f(rate, 9, 2)} {_f(eff, 7, 2)} {search_cols}"
            f"{_f(speed, 7, 2)} {_f(row['peak_rss_mib'], 9, 0)} {_f(row['busy_cores'], 5, 2)} "
            f"{_f(row['others_cores'], 6, 2)}  {note}"
        )


def _f(value: float | None, width: int, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}"


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "stdout"}


# --------------------------------------------------------------------------- presets


def compare_preset(preset: str, args: argparse.Namespace) -> dict[str, Any]:
    (cells, steps, files) = SIZES[preset][1 if args.quick else 0]
    if args.cells:
        cells = args.cells  # the preset scaled to the node: same search, steps and files
    workdir = Path(args.workdir)
    folder, spec = data_for(workdir, preset, cells, steps, files)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = workdir / "logs" / f"{preset}-{stamp}"
    rows: list[dict[str, Any]] = []
    ideal_wall = None
    ideals: list[float] = []  # every ideal measured, in order (--ideal-each)

    def ideal_row() -> None:
        nonlocal ideal_wall
        row = run_ideal(spec, args, logs, len(ideals))
        row["cells"] = cells
        if row["result"]:
            ideals.append(row["result"]["ideal_wall_seconds"])
            ideal_wall = statistics.mean(ideals)
            row["display_wall"] = ideals[-1]
            row["inner"] = row["result"]["elapsed_seconds"]
            row["note"] = (
                f"{row['result']['cpu_seconds']:.1f} CPU s / {args.cores} cores, "
                f"{row['result']['fits']} fits; inner = the process's elapsed s"
            )
        rows.append(row)
        _progress(row)

    def bracketed(row: dict[str, Any]) -> None:
        """With --ideal-each, the ideal is measured again after ``row``, whose efficiency is
        then against the mean of the ideals just before and just after it."""
        if args.ideal_each and ideals:
            before = ideals[-1]
            ideal_row()
            row["ideal_wall"] = (before + ideals[-1]) / 2

    if not args.skip_ideal:
        ideal_row()
    refs: list[dict[str, Any]] = []
    ref_cells = args.reference_cells
    if ref_cells is None:
        ref_cells = REFERENCE_CELLS.get(preset, (None, None))[1 if args.quick else 0]
    ref_cells = ref_cells if ref_cells and ref_cells < cells else None
    if not args.skip_reference:
        if not Path(args.reference_python).exists():
            print(
                f"no reference environment at {args.reference_python}: see "
                "benchmarks/README.md; skipping the reference",
                file=sys.stderr,
            )
        else:
            for mode in args.reference_modes:
                row = run_reference(spec, mode, args, logs, ref_cells)
                row["cells"] = ref_cells or cells
                if row["result"]:
                    r = row["result"]
                    row["inner"] = r["seconds"]
                    row["note"] = (
                        f"fit {r['fit_seconds']:.1f} s, evaluate {r['evaluate_seconds']:.1f} s, "
                        f"split {r['split_seconds']:.1f} s"
                    )
                    if ref_cells:
                        whole = cells * row["wall"] / ref_cells
                        row["note"] = (
                            f"first {ref_cells} cells only (~{whole:.0f} s for all "
                            f"{cells} at this rate); " + row["note"]
                        )
                    if r.get("shared_models"):
                        row["note"] += f"; {r['shared_models']} cells share a model"
                rows.append(row)
                refs.append(row)
                _progress(row)
    ok_refs = [r for r in refs if r.get("result") and not r["timed_out"]]
    reference_rate = max((r["cells"] / r["wall"] for r in ok_refs), default=None)
    reference_wall = min((r["wall"] for r in ok_refs), default=None)
    hp_rows = []
    ideal_cpu = (
        statistics.mean(r["result"]["cpu_seconds"] for r in rows if _is_ideal(r))
        if (ideals)
        else None
    )
    for workers in args.breakdown:
        row = run_breakdown(spec, args, logs, workers, ideal_cpu)
        row["cells"] = cells
        if row["result"]:
            row["inner"] = row["result"]["run_wall"]
            row["note"] = "inner = first batch -> last partition"
        rows.append(row)
        hp_rows.append(row)
        _progress(row)
    for rep in range(0 if args.breakdown else args.repeat):
        row = run_hpctune(spec, args, logs, rep)
        row["cells"] = cells
        if row["result"]:
            r = row["result"]
            row["inner"] = r["seconds"]
            row["note"] = f"{r['ok']} ok, {r['skipped']} skipped, {r['failed']} failed"
        rows.append(row)
        hp_rows.append(row)
        _progress(row)
        bracketed(row)
    if preset == "onecell":  # for comparison: fits in worker processes, the search as one task
        variants = [(("processes", "true"), rep) for rep in range(args.repeat)]
        variants.append((("granularity", "partition"), 0))
        for variant, rep in variants:
            row = run_hpctune(spec, args, logs, rep, variant)
            row["cells"] = cells
            if row["result"]:
                row["inner"] = row["result"]["seconds"]
                row["note"] = (
                    "the whole search as one task"
                    if variant[0] == "granularity"
                    else "the fits in worker processes"
                )
            rows.append(row)
            _progress(row)
            bracketed(row)
    agree = None
    if ok_refs and any(r.get("result") for r in hp_rows):
        agree = agreement(spec, ok_refs[0]["results_file"])
    title = (
        f"[{preset}] {cells} cells x {steps} steps in {files} files, "
        f"{args.cores} cores; data {folder}"
    )
    ideal_rate = cells / ideal_wall if ideal_wall else None
    print_table(title, rows, ideal_rate, reference_rate)
    found = [r["breakdown"] for r in hp_rows if r.get("breakdown")]
    if found:
        import breakdown

        print(f"\nwhere the CPU goes ({preset}, CPU seconds; ms per partition at the end)")
        breakdown.print_side_by_side(found)
    walls = [r["wall"] for r in hp_rows if r.get("result")]
    if len(walls) > 1:
        print(
            f"hpctune over {len(walls)} runs: median {statistics.median(walls):.1f} s, "
            f"min {min(walls):.1f} s, max {max(walls):.1f} s"
        )
    if agree:
        print(
            f"results: {agree['same_best_params']} of {agree['compared']} cells searched by both "
            f"({agree['cells'] - agree['compared']} skipped by hpctune) have the same best "
            f"parameters in hpctune and {ok_refs[0]['name']}; |diff| of the best cv score: "
            f"median {_g(agree['median_abs_diff_best_score'])}, max "
            f"{_g(agree['max_abs_diff_best_score'])}; max |diff| test r2 "
            f"{_g(agree['max_abs_diff_test_r2'])}"
        )
    return {
        "preset": preset,
        "cells": cells,
        "steps": steps,
        "files": files,
        "data": str(folder),
        "spec": str(spec),
        "ideal_wall_seconds": ideal_wall,
        "ideal_walls": ideals,
        "reference_wall_seconds": reference_wall,
        "runs": [_plain_row(r) for r in rows],
        "agreement": agree,
    }


def _is_ideal(row: dict[str, Any]) -> bool:
    return row["name"].startswith("ideal") and bool(row.get("result"))


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _progress(row: dict[str, Any]) -> None:
    state = "timed out" if row["timed_out"] else f"exit {row['rc']}"
    print(
        f"  {row['name']}: {row['wall']:.1f} s, peak {row['peak_rss_mib']:.0f} MiB ({state})",
        file=sys.stderr,
        flush=True,
    )


def compare_memory(args: argparse.Namespace) -> dict[str, Any]:
    sizes = MEMORY_SIZES[1 if args.quick else 0]
    workdir = Path(args.workdir)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    rows = []
    for cells, steps, files in sizes:
        _, spec = data_for(workdir, "memory", cells, steps, files)
        logs = workdir / "logs" / f"memory-{cells}x{steps}-{stamp}"
        row = run_hpctune(spec, args, logs, 0)
        row["name"] = f"hpctune {cells}x{steps}"
        row["data_mib"] = make_data.data_mib(cells, steps)
        row["cells"] = cells
        if row["result"]:
            r = row["result"]
            row["inner"] = r["seconds"]
        rows.append(row)
        _progress(row)
    print(f"\n[memory] the tiny search with hpctune, {args.cores} cores")
    print("(per process: the hpctune process first, then its children by decreasing peak)")
    header = (
        f"{'run':<22} {'data MiB':>9} {'wall s':>8} {'cells/s':>8} {'peak MiB':>9} "
        f"{'max proc MiB':>12} {'busy':>5} {'others':>6}  per process MiB"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        failed = row["timed_out"] or row.get("result") is None
        print(
            f"{row['name']:<22} {row['data_mib']:>9.0f} {_f(row['wall'], 8, 1)} "
            f"{_f(row['cells'] / row['wall'] if not failed else None, 8, 2)} "
            f"{_f(row['peak_rss_mib'], 9, 0)} {_f(row['peak_process_mib'], 12, 0)} "
            f"{_f(row['busy_cores'], 5, 2)} {_f(row['others_cores'], 6, 2)}  "
            + " / ".join(f"{v:.0f}" for v in row["peak_by_process_mib"][:4])
            + ("  FAILED" if failed else "")
        )
    growth = None
    small, big = rows
    if all(r.get("result") for r in rows):
        added = big["data_mib"] - small["data_mib"]
        growth = (big["peak_rss_mib"] - small["peak_rss_mib"]) / added
        verdict = "within" if growth <= 0.1 else "above"
        print(
            f"growth: {growth:.3f} MiB of peak RSS per MiB of added data ({verdict} the "
            "target of 0.1)"
        )
    return {"preset": "memory", "runs": [_plain_row(r) for r in rows], "growth_mib_per_mib": growth}


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    import importlib.metadata as md

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in (
        "hpctune",
        "dask",
        "distributed",
        "dask-ml",
        "scikit-learn",
        "xarray",
        "numpy",
        "pandas",
        "netCDF4",
    ):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    commit = None

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "src")
        commit = (head + (" (src modified)" if dirty else "")) if head else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "host": platform.node(),
        "cpu": cpu,
        "cores": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "presets",
        nargs="*",
        default=["heavy", "tiny"],
        choices=["heavy", "tiny", "onecell", "memory"],
        help="what to run (default: heavy tiny)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--workdir",
        default="/tmp/hpctune-bench",
        help="data, results and logs (default /tmp/hpctune-bench)",
    )
    parser.add_argument(
        "--cores",
        type=int,
        default=2,
        help="workers of the reference and of hpctune, cores of the ideal",
    )
    parser.add_argument(
        "--cells",
        type=int,
        default=None,
        metavar="N",
        help="cells of heavy and tiny (default: the preset's own); scales a preset to the "
        "node, e.g. heavy --cells 640 --cores 16",
    )
    parser.add_argument("--repeat", type=int, default=1, help="hpctune runs per preset")
    parser.add_argument(
        "--breakdown",
        default=[],
        type=lambda s: [int(w) for w in s.split(",") if w],
        metavar="W1,W2,...",
        help="instead of the plain hpctune runs, one run per worker count through "
        "benchmarks/breakdown.py: where every CPU second goes",
    )
    parser.add_argument(
        "--reference-modes",
        default="sync,secede",
        type=lambda s: [m for m in s.split(",") if m],
        help="the reference's --inner modes to run (default sync,secede)",
    )
    parser.add_argument(
        "--reference-python",
        default=str(VENV_PYTHON),
        help="the python with motrainer installed (default benchmarks/.venv)",
    )
    parser.add_argument(
        "--save-models",
        action="store_true",
        help="the reference also saves its models as the notebook does",
    )
    parser.add_argument(
        "--reference-cells",
        type=int,
        default=None,
        metavar="K",
        help="the reference runs on the first K cells only (default: all, "
        "but 400 for tiny and 100 for tiny --quick; 0 for all)",
    )
    parser.add_argument(
        "--ideal-cells",
        type=int,
        default=None,
        metavar="K",
        help="the ideal times K partitions drawn at random and scales up",
    )
    parser.add_argument("--skip-ideal", action="store_true")
    parser.add_argument(
        "--ideal-each",
        action="store_true",
        help="measure the ideal again after every hpctune run; each run's efficiency is "
        "against the mean of the ideals just before and after it (for a noisy machine)",
    )
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds after which a run is stopped (default 1800)",
    )
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=None,
        metavar="L",
        help="before each run, wait until the 1-minute load average is below L",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=600,
        metavar="S",
        help="wait at most S seconds for --quiet-load (default 600)",
    )
    parser.add_argument("--json-out", help="write every figure to this JSON file")
    args = parser.parse_args(argv)
    for mode in args.reference_modes:
        if mode not in ("sync", "secede", "nested"):
            parser.error(f"--reference-modes: unknown mode {mode!r}")

    QUIET["load"], QUIET["wait"] = args.quiet_load, args.quiet_wait
    info = machine()
    print(
        f"{info['date']}  {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"{info['os']}, Python {info['python']}, load average {info['load_average']}"
    )
    print(
        "  "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + f"; commit {info['commit']}"
    )
    report: dict[str, Any] = {
        "machine": info,
        "quick": args.quick,
        "cores": args.cores,
        "presets": [],
    }
    for preset in dict.fromkeys(args.presets):
        if preset == "memory":
            report["presets"].append(compare_memory(args))
        else:
            report["presets"].append(compare_preset(preset, args))
        sys.stdout.flush()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2, default=str))
        print(f"\nfigures written to {args.json_out}")


if __name__ == "__main__":
    main()
