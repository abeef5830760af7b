"""The same search in ``local`` mode and in ``allocation`` mode on SLURM nodes: same results?
How long?

    python benchmarks/scaling_slurm.py [--preset heavy] [--quick] [--layouts 2x1,2x2]
        [--workdir /tmp/hpctune-bench] [--json-out FILE]

Runs the preset's spec (data made by ``make_data.py`` if missing) once with ``hpctune run`` on
a local cluster of 2 worker processes, then, for each layout NxT, as a batch job of N nodes x
T tasks (``sbatch -N N --ntasks-per-node=T``) whose script runs ``hpctune run`` with
``cluster.mode=allocation``: the scheduler in the batch step, one worker per task through
``srun``. Every run writes its own output folder. The table gives each run's time as
hpctune reports it (cluster start included), the nodes its results name, and how its results
compare with the local run's: partitions with the same status and best parameters, and the
largest difference of best cv score and test r2.

On the test machine the SLURM nodes are emulated on one host (tests/slurm/up.sh): they share its
cores, so the layouts show the cost of the allocation mode, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import SIZES, data_for, machine  # noqa: E402


def local_run(spec: Path, output: Path, workers: int) -> dict[str, Any]:
    command = [
        "hpctune", "run", str(spec), "--json", "--restart", "--quiet",
        "--set", f"output={output}",
        "--set", "cluster.mode=local",
        "--set", f"cluster.workers={workers}",
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"local run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return {**json.loads(done.stdout), "wall": time.monotonic() - started}


def allocation_run(spec: Path, output: Path, nodes: int, tasks: int) -> dict[str, Any]:
    command = shlex.join([
        "hpctune", "run", str(spec), "--json", "--restart", "--quiet",
        "--set", f"output={output}",
        "--set", "cluster.mode=allocation",
        "--set", "cluster.interface=lo",
    ])  # fmt: skip
    log = output.parent / f"{output.name}.out"
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as script:
        script.write(f"#!/bin/bash\n{command}\n")
    submit = [
        "sbatch", "--parsable", "-N", str(nodes), f"--ntasks-per-node={tasks}",
        "--mem-per-cpu=1G", "-t", "30", "-J", f"scaling-{nodes}x{tasks}", "-o", str(log),
        script.name,
    ]  # fmt: skip
    started = time.monotonic()
    job_id = subprocess.run(submit, capture_output=True, text=True, check=True).stdout.strip()
    job_id = job_id.split(";")[0]
    while subprocess.run(
        ["squeue", "-h", "-j", job_id], capture_output=True, text=True, check=False
    ).stdout.strip():
        time.sleep(0.5)
    wall = time.monotonic() - started
    os.unlink(script.name)
    text = log.read_text() if log.exists() else ""
    try:
        result = json.loads(text[text.index("{") : text.rindex("}") + 1])
    except ValueError:
        sys.exit(f"job {job_id} printed no JSON summary; its output:\n{text[-3000:]}")
    return {**result, "wall": wall, "job_id": job_id}


def compare_results(local: Path, other: Path) -> dict[str, Any]:
    import numpy as np
    import xarray as xr

    with xr.open_dataset(local / "results.nc") as a, xr.open_dataset(other / "results.nc") as b:
        params = [v for v in a.data_vars if v.startswith("best_") and v != "best_score"]
        same_status = bool((a.status.values == b.status.values).all())
        same_params = int(
            np.logical_and.reduce(
                [(a[p].values == b[p].values) | (a[p].isnull() & b[p].isnull()).values
                 for p in params]
            ).sum()
        )  # fmt: skip
        return {
            "partitions": int(a.sizes[next(iter(a.status.dims))]),
            "same_status": same_status,
            "same_best_params": same_params,
            "max_diff_best_score": float(np.nanmax(np.abs(a.best_score - b.best_score))),
            "max_diff_test_r2": float(np.nanmax(np.abs(a.test_r2 - b.test_r2))),
            "nodes": sorted({str(n) for n in b.node.values if str(n)}),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="heavy", choices=sorted(SIZES))
    parser.add_argument("--quick", action="store_true", help="the preset's small sizes")
    parser.add_argument("--layouts", default="2x1,2x2", help="NODESxTASKS, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="workers of the local run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hpctune-bench"))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)

    cells, steps, files = SIZES[args.preset][1 if args.quick else 0]
    _, spec = data_for(args.workdir, args.preset, cells, steps, files)
    out = spec.parent / "scaling"
    out.mkdir(exist_ok=True)
    info = machine()
    print(f"{info['date']}  {info['cpu']}, {info['cores']} cores; commit {info['commit']}")
    print(f"[{args.preset}] {spec}")
    rows = [("local", f"{args.workers} workers", local_run(spec, out / "local", args.workers))]
    rows[0][2]["comparison"] = compare_results(out / "local", out / "local")
    for layout in args.layouts.split(","):
        nodes, tasks = (int(v) for v in layout.split("x"))
        result = allocation_run(spec, out / f"allocation-{layout}", nodes, tasks)
        result["comparison"] = compare_results(out / "local", out / f"allocation-{layout}")
        rows.append((f"allocation {layout}", f"{nodes} nodes x {tasks} tasks", result))

    print(f"{'run':<16} {'layout':<18} {'hpctune s':>9} {'job s':>7}  {'same':>9}  "
          f"{'max |d score|':>13} {'max |d r2|':>10}  nodes")  # fmt: skip
    for name, layout, r in rows:
        c = r["comparison"]
        same = f"{c['same_best_params']}/{c['partitions']}" if c["same_status"] else "status!"
        print(
            f"{name:<16} {layout:<18} {r['seconds']:>9.1f} {r['wall']:>7.1f}  {same:>9}  "
            f"{c['max_diff_best_score']:>13.2e} {c['max_diff_test_r2']:>10.2e}  "
            f"{','.join(c['nodes'])}"
        )
    if args.json_out:
        args.json_out.write_text(
            json.dumps({"machine": info, "preset": args.preset, "runs": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
