"""What a local cluster costs when it computes nothing: CPU per wall second of its timers.

    python benchmarks/idle_cluster.py [--workers 2] [--seconds 20] [--config hpctune|distributed]
        [--repeat N] [--json FILE]

Starts a local cluster as hpctune does (TLS on 127.0.0.1, N worker processes of 1 thread; the
scheduler and the nannies in this process), waits 5 s for it to settle, then measures the CPU
seconds of this process (the driver: scheduler, nannies, client) and of its child processes
(the workers) over ``--seconds`` of wall time in which no task runs. What it measures is the
periodic work of Dask's servers (event-loop health checks, memory and system monitors,
heartbeats), which a run pays per second and per worker whatever its partitions.

``--config hpctune`` starts the servers under hpctune's settings
(:data:`hpctune.cluster.WORKER_CONFIG`), ``distributed`` under distributed's defaults; any
other setting through Dask's environment variables (``DASK_DISTRIBUTED__...``). Each repeat
runs in a fresh process, so that the settings are read as a run reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure(workers: int, seconds: float, config: str) -> dict:
    """One idle cluster, in this process."""
    import dask
    import psutil
    from distributed import Client, LocalCluster

    from hpctune.cluster import WORKER_CONFIG
    from hpctune.cluster.security import temporary_security

    security = temporary_security()
    with dask.config.set(WORKER_CONFIG if config == "hpctune" else {}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tls://",
            security=security,
            dashboard_address="127.0.0.1:0",
            silence_logs=50,
        )
    client = Client(cluster, security=security)
    try:
        time.sleep(5)
        me = psutil.Process()
        children = me.children(recursive=True)

        def cpu(process: psutil.Process) -> float:
            times = process.cpu_times()
            return times.user + times.system

        before = cpu(me), sum(cpu(c) for c in children), time.perf_counter()
        time.sleep(seconds)
        after = cpu(me), sum(cpu(c) for c in children), time.perf_counter()
    finally:
        client.close()
        cluster.close()
    wall = after[2] - before[2]
    return {
        "config": config,
        "workers": workers,
        "wall_s": round(wall, 2),
        "driver_ms_per_s": round(1000 * (after[0] - before[0]) / wall, 1),
        "workers_ms_per_s": round(1000 * (after[1] - before[1]) / wall, 1),
        "environment": {k: v for k, v in os.environ.items() if k.startswith("DASK_")},
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--config", choices=("hpctune", "distributed"), default="hpctune")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", dest="json_out", help="write the figures to this file")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child run
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.workers, args.seconds, args.config)))
        return
    runs = []
    for _ in range(args.repeat):
        command = [sys.executable, __file__, "--one", "--workers", str(args.workers)]
        command += ["--seconds", str(args.seconds), "--config", args.config]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        run = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"{args.config}, {args.workers} workers: driver {run['driver_ms_per_s']} ms of CPU "
            f"per second, workers {run['workers_ms_per_s']} (load {run['load'][0]})",
            flush=True,
        )
    if args.json_out:
        with open(args.json_out, "w") as out_file:
            json.dump(runs, out_file, indent=1)


if __name__ == "__main__":
    main()
