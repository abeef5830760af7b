"""What a run on worker threads costs beyond its fits: wall time minus the workers' CPU / workers.

    python benchmarks/overhead.py SPEC [hpctune run options ...]
    e.g. python benchmarks/overhead.py onecell.yaml --restart --quiet

Runs ``hpctune run SPEC ...`` in this process (worker threads: fit granularity, an estimator
that releases the GIL) while a thread samples every thread's CPU seconds from
``/proc/self/task`` every 0.1 s. Prints one JSON line: the wall seconds from before hpctune is
imported to the run's end, the CPU seconds of the worker threads (``hpctune-worker-*``: the fits,
scores and refits), of the main thread (start-up, results), of the model file's import
(``hpctune-import``), and ``overhead`` = wall - worker CPU / number of worker threads: zero
when the workers compute from the first instant to the last.

Machine speed moves both the ideal and a run (here by up to 30% within minutes), so comparing two
runs' wall times needs many of them; their overheads are steadier, the fits' own CPU taken out.
Alternate two commits with ``PYTHONPATH=<worktree>/src``. Linux only. Figures: RESULTS.md.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

STARTED = time.perf_counter()
TICKS = os.sysconf("SC_CLK_TCK")
cpu: dict[int, float] = {}
names: dict[int, str] = {}
done = threading.Event()


def _sample() -> None:
    while not done.is_set():
        for thread in threading.enumerate():
            if thread.native_id is not None:
                names[thread.native_id] = thread.name
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended between the listing and the read
                continue
            cpu[int(tid)] = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        done.wait(0.1)


def main() -> int:
    sampler = threading.Thread(target=_sample, name="overhead-sampler", daemon=True)
    sampler.start()
    from hpctune.cli import main as hpctune_main

    try:
        hpctune_main(["run", *sys.argv[1:]])
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    wall = time.perf_counter() - STARTED
    done.set()
    sampler.join()

    def threads_cpu(match) -> list[float]:
        return [seconds for tid, seconds in cpu.items() if match(names.get(tid, ""))]

    workers = threads_cpu(lambda name: name.startswith("hpctune-worker"))
    worker_cpu = round(sum(workers), 2)
    main_id = threading.main_thread().native_id
    figures = {
        "exit_code": code,
        "wall": round(wall, 2),
        "worker_threads": len(workers),
        "workers_cpu": worker_cpu,
        "main_cpu": round(cpu.get(main_id, 0.0), 2),
        "import_cpu": round(sum(threads_cpu(lambda name: name == "hpctune-import")), 2),
        "process_cpu": round(sum(os.times()[:2]), 2),
        "overhead": round(wall - worker_cpu / len(workers), 2) if workers else None,
    }
    print(json.dumps(figures))
    return 0 if workers else 1  # no worker threads: this run took worker processes


if __name__ == "__main__":
    sys.exit(main())
