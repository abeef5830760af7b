"""Where the time of one ``hpctune run`` goes: driver milestones and every task on the workers.

    python benchmarks/timeline.py SPEC [--set KEY=VALUE ...] [--json FILE]

Runs the spec once in this process through ``hpctune.execution.driver.run`` (output to a scratch
folder, ``--restart``), with timestamps (seconds since this script started) at the driver's
milestones: ``prepare`` begins and ends, the cluster starts and is ready, each dask-ml graph is
submitted and done (fit granularity), the run returns. The scheduler's task stream gives, per
worker, when each task ran (on worker threads: dask's local scheduler, through its callbacks);
the table sums the compute time of the tasks by kind (the key's prefix: ``svr-fit``,
``score``, ``best-estimator``, ``hpctune-warm-up``, ...), and the CPU seconds of every worker
process and of the driver are read at the end.

What it shows on the ``onecell`` preset is in RESULTS.md ("onecell").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from dask.callbacks import Callback

T0 = time.perf_counter()
WALL0 = time.time()


def now() -> float:
    return round(time.perf_counter() - T0, 2)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _add_task_stream(dask_scheduler: Any) -> None:
    from distributed.diagnostics.task_stream import TaskStreamPlugin

    if "task-stream" not in dask_scheduler.plugins:
        dask_scheduler.add_plugin(TaskStreamPlugin(dask_scheduler))


def _task_stream(dask_scheduler: Any) -> list[dict[str, Any]]:
    return list(dask_scheduler.plugins["task-stream"].buffer)


class LocalTasks(Callback):
    """The tasks of dask's local scheduler (worker threads), in the task stream's form. A task's
    start is when the scheduler hands it to the threads: each search keeps no more tasks in
    flight than there are threads, so it waits little, if at all, before it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[dict[str, Any]] = []
        self._started: dict[Any, float] = {}

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        self._started[key] = time.time()

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker: Any) -> None:
        start = self._started.pop(key, time.time())
        self.tasks.append(
            {
                "key": key,
                "worker": f"thread-{worker}",
                "startstops": [{"action": "compute", "start": start, "stop": time.time()}],
            }
        )


def _kind(key: Any) -> str:
    name = key[0] if isinstance(key, tuple) else key
    return str(name).rsplit("-", 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", dest="json_out", help="write the events and tasks here")
    args = parser.parse_args(argv)

    import hpctune
    from hpctune.execution import driver as execute

    events: list[tuple[float, str]] = []
    report: dict[str, Any] = {}

    def mark(what: str) -> None:
        events.append((now(), what))
        print(f"{now():7.2f}  {what}", flush=True)

    mark("hpctune imported")
    start_cluster = execute.start_cluster

    @contextlib.contextmanager
    def timed_cluster(job: Any, **kwargs: Any) -> Iterator[Any]:
        mark("cluster start begins")
        with start_cluster(job, **kwargs) as handle:
            mark("cluster ready")
            if handle.client is None:  # worker threads of this process: dask's local scheduler
                with LocalTasks() as tasks:
                    yield handle
                report["tasks"] = tasks.tasks
                return
            handle.client.run_on_scheduler(_add_task_stream)
            try:
                yield handle
            finally:
                report["worker_cpu_seconds"] = sorted(handle.client.run(cpu_seconds).values())
                report["tasks"] = handle.client.run_on_scheduler(_task_stream)

    check_data, check_search = execute.check_data, execute.check_search

    def timed_check_data(job: Any) -> Any:
        mark("prepare begins")
        return check_data(job)

    def timed_check_search(prepared: Any) -> Any:
        try:
            return check_search(prepared)
        finally:
            mark("prepare ends")

    get = execute.SearchGraphRunner._get

    def timed_get(self: Any, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        mark(f"graph of {len(dsk)} tasks submitted")
        try:
            return get(self, dsk, keys, **kwargs)
        finally:
            mark("graph done")

    execute.start_cluster = timed_cluster
    execute.check_data = timed_check_data
    execute.check_search = timed_check_search
    execute.SearchGraphRunner._get = timed_get

    with tempfile.TemporaryDirectory(prefix="hpctune-timeline-") as scratch:
        job = hpctune.load_spec(args.spec, [*args.overrides, f"output={scratch}"])
        summary = execute.run(job, restart=True)
        mark(f"run returned ({summary.ok} ok, {summary.failed} failed)")

    by_kind: dict[str, list[float]] = {}
    spans: dict[str, list[float]] = {}
    for task in report.get("tasks", []):
        for step in task["startstops"]:
            if step["action"] != "compute":
                continue
            entry = by_kind.setdefault(_kind(task["key"]), [0, 0.0])
            entry[0] += 1
            entry[1] += step["stop"] - step["start"]
            span = spans.setdefault(task["worker"], [step["start"], step["stop"], 0.0])
            span[0], span[1] = min(span[0], step["start"]), max(span[1], step["stop"])
            span[2] += step["stop"] - step["start"]
    print("\ntask compute time by kind (count, seconds):")
    for kind, (count, seconds) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]):
        if seconds >= 0.005:
            print(f"  {kind:40s} {count:5d} {seconds:8.2f}")
    print("workers (first task starts, last task ends, busy seconds):")
    for worker, (first, last, busy) in sorted(spans.items()):
        print(f"  {worker:32s} {first - WALL0:7.2f} {last - WALL0:7.2f} {busy:7.2f}")
    print(f"CPU seconds: workers {report.get('worker_cpu_seconds')}, driver {cpu_seconds():.2f}")
    if args.json_out:
        out = {
            "events": events,
            "tasks_by_kind": by_kind,
            "workers": {w: [s[0] - WALL0, s[1] - WALL0, s[2]] for w, s in spans.items()},
            "worker_cpu_seconds": report.get("worker_cpu_seconds"),
            "driver_cpu_seconds": cpu_seconds(),
        }
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
