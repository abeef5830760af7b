"""A million tiny cells on one machine: is the cost linear in the cells, and what do memory and
the output folder hold at the end?

    python benchmarks/million.py --cells 10000 --cells 1000000     # the issue's comparison
    python benchmarks/million.py --cells 2000 --quick              # a smoke run

Each size gets its own data (``make_data.py``: one file, ``--steps`` 12-hourly steps, the last
20% the test period) and the ``tiny`` search (Ridge, one candidate, 2-fold cv) with
``search.min_samples: 20`` (the synthetic data has gaps). hpctune runs as a user would start it,
``hpctune run JOB --json`` on a local cluster of ``--workers`` processes x 1 thread. Per size:
wall time, cells/s, the peak summed RSS and the peak summed PSS of the whole process tree (PSS
counts a page shared by forked processes once), the hpctune process's own peak, files and bytes
in the output folder, and results.nc's size.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_data  # noqa: E402
from compare import _json_of, machine, measure  # noqa: E402


def tree_pss(root: int) -> int:
    """Summed PSS in bytes of ``root`` and its descendants (0 for those gone meanwhile)."""
    try:
        members = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in members:
        try:
            with open(f"/proc/{member.pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


class PssPeak(threading.Thread):
    """Samples the PSS of the process tree under this process's children every ``interval``."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.done.wait(self.interval):
            total = sum(tree_pss(child.pid) for child in me.children())
            self.peak = max(self.peak, total)


def folder_files(root: Path) -> tuple[int, int]:
    """Files and bytes under ``root``."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def run_size(cells: int, args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.workdir) / f"data-{cells}x{args.steps}"
    spec = data / "job.yaml"
    started = time.perf_counter()
    make_data.main(
        [
            "--cells",
            str(cells),
            "--steps",
            str(args.steps),
            "--files",
            "1",
            "--out",
            str(data),
            "--preset",
            "tiny",
            "--spec",
            str(spec),
            "--if-missing",
            "-q",
        ]
    )
    made = time.perf_counter() - started
    out = data / "results-tiny"
    exe = Path(sys.executable).parent / "hpctune"
    cmd = [
        str(exe) if exe.exists() else sys.executable,
        *([] if exe.exists() else ["-m", "hpctune"]),
        "run",
        str(spec),
        "--json",
        "--restart",
        "--set",
        f"cluster.workers={args.workers}",
        "--set",
        "cluster.threads=1",
        "--set",
        "search.min_samples=20",
    ]
    pss = PssPeak(args.interval)
    pss.start()
    try:
        m = measure(cmd, data / "hpctune.log", args.timeout, interval=args.interval)
    finally:
        pss.done.set()
        pss.join()
    result = _json_of(m["stdout"]) or {}
    files, size = folder_files(out)
    results_nc = out / "results.nc"
    row = {
        "cells": cells,
        "steps": args.steps,
        "rc": m["rc"],
        "timed_out": m["timed_out"],
        "data_seconds": round(made, 1),
        "wall_s": round(m["wall"], 1),
        "cells_per_s": round(cells / m["wall"], 1),
        "partitions": result.get("total"),
        "counts": {k: result.get(k) for k in ("ok", "skipped", "failed", "pending")},
        "cpu_per_cell_ms": round(1000 * m["cpu_seconds"] / cells, 2),
        "peak_tree_rss_mib": round(m["peak_rss_mib"]),
        "peak_tree_pss_mib": round(pss.peak / 2**20),
        "peak_hpctune_process_mib": m["peak_by_process_mib"][0],
        "peak_by_process_mib": m["peak_by_process_mib"][:4],
        "cpu_seconds": round(m["cpu_seconds"], 1),
        "busy_cores": round(m["busy_cores"], 2),
        "others_cores": round(m["others_cores"], 2),
        "load_before": m["load_before"],
        "output_files": files,
        "output_mib": round(size / 2**20, 1),
        "results_nc_mib": round(results_nc.stat().st_size / 2**20, 1)
        if results_nc.exists()
        else None,
    }
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, action="append", help="sizes to run (repeatable)")
    parser.add_argument("--steps", type=int, default=80, help="time steps per cell (default 80)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/hpctune-million")
    parser.add_argument("--interval", type=float, default=0.5, help="memory sampling seconds")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--quick", action="store_true", help="2000 cells, a smoke run")
    parser.add_argument("--json-out", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    sizes = args.cells or ([2000] if args.quick else [10_000, 1_000_000])
    rows = [run_size(cells, args) for cells in sizes]
    if len(rows) > 1 and all(r["rc"] in (0, 3) for r in rows):
        first, last = rows[0], rows[-1]
        ratio = last["cells_per_s"] / first["cells_per_s"]
        print(
            f"cells/s at {last['cells']} cells is {ratio:.2f} of cells/s at {first['cells']} "
            f"({last['cells_per_s']} against {first['cells_per_s']})"
        )
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps({"machine": machine(), "runs": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
