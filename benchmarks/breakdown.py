"""Where every CPU second of one ``hpctune run`` goes, at N worker processes.

    python benchmarks/breakdown.py SPEC [--workers 2] [--ideal-cpu S | --ideal]
        [--set KEY=VALUE ...] [--no-py-spy] [--json FILE]

Runs ``hpctune run SPEC --restart --quiet --set cluster.workers=N --set cluster.threads=1`` in
this process (a local cluster of N worker processes forked from hpctune's forkserver) and
splits the CPU seconds of the whole process tree:

- **start-up**: from the interpreter's start to the first batch submitted: the driver's imports,
  data checks and cluster start, the forkserver's imports, the workers' own start;
- **run** (first batch submitted -> last partition collected), per process and thread:
  the workers' task threads, split by timers (``time.thread_time``) put around hpctune's
  functions in every worker before the first batch: reading (``CellReader.read``), rows
  (``select_rows``: NaN dropping, test period), the search's ``fit`` (dask-ml's graph on the
  synchronous scheduler), the test-period scores, the model's serialisation (skops), the model
  file, the journal record, the rest of the search and of the task; the workers' other threads
  (event loop, comms, heartbeats, distributed's profiler); the driver's main thread (the
  runner's loop, progress), its event-loop thread (``IO loop``: in a local cluster the
  scheduler, the nannies and the client all live there, in the driver process), its other
  threads. The event-loop thread's CPU is split between scheduler, nannies and client by
  py-spy's samples of it (the innermost frame of ``distributed/scheduler.py``, ``nanny.py`` or
  ``client.py`` on each sampled stack; samples with none of them: comms and the loop itself);
- **tail**: last partition collected -> exit (results.nc, cluster stop);
- **idle**: core-seconds of min(N, this machine's cores) x wall left unused by the tree; the
  CPU other processes of the machine used meanwhile is given beside it (``others``).

The fits' CPU of the ideal (scikit-learn's search alone, ``benchmarks/ideal.py``) is the
reference of "beyond the fits": ``--ideal`` runs ideal.py first in its own process,
``--ideal-cpu S`` takes its CPU seconds. Prints a table, or one JSON object with ``--json``.
The driver's and the scheduler's CPU per partition do not depend on free cores: on a machine
with fewer cores than workers (oversubscribed) they are what to read. Linux only.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")
CATEGORIES = (
    (
        "comms (TLS, (de)serialisation)",
        (
            "distributed/comm/",
            "distributed/protocol/",
            "ssl.py",
            "tornado/iostream.py",
            "distributed/batched.py",
        ),
    ),
    ("system monitors", ("distributed/system_monitor.py",)),
    (
        "scheduler",
        (
            "distributed/scheduler.py",
            "distributed/stealing.py",
            "distributed/active_memory_manager.py",
        ),
    ),
    ("nannies", ("distributed/nanny.py",)),
    ("client", ("distributed/client.py", "sync.<locals>")),
)
PERIODIC = ("PeriodicCallback._run", "heartbeat")
"""Frames of the work an event loop does on a clock (system and memory monitors, work
stealing's balance, heartbeats): it grows with the wall time and the workers, not with the
partitions."""
PERIODIC_KEY = "_periodic"
"""The key of :func:`loop_samples`'s count of periodic samples (also counted in a category)."""
"""The event-loop thread's samples, by the innermost frame (the one nearest the sampled
instruction) naming one of these; a sample in ``select`` is the loop waiting (not counted)."""


# --------------------------------------------------------------------------- CPU readings


def thread_cpu(pid: int | str = "self") -> dict[str, float]:
    """CPU seconds of every thread of process ``pid``, keyed ``name:tid`` (Linux ``/proc``)."""
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    names = {t.native_id: t.name for t in threading.enumerate()} if pid == "self" else {}
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                head, tail = stat.read().rsplit(")", 1)
        except OSError:  # ended between the listing and the read
            continue
        fields = tail.split()
        name = names.get(int(tid)) or head.split("(", 1)[1]
        out[f"{name}:{tid}"] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def _name(key: str) -> str:
    return key.rsplit(":", 1)[0]


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Per-key difference (a key missing before counts from 0)."""
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


class Tree(threading.Thread):
    """Samples the CPU seconds of this process's descendants every ``interval`` (last value
    seen per process: a process's CPU after its last sample is lost, at most ``interval``)."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(daemon=True, name="breakdown-tree")
        self.interval = interval
        self.cpu: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.done = threading.Event()
        self.exclude: set[int] = set()

    def sample(self) -> None:
        try:
            children = psutil.Process().children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            if child.pid in self.exclude:
                continue
            try:
                times = child.cpu_times()
                self.cpu[child.pid] = times.user + times.system
                self.names.setdefault(child.pid, " ".join(child.cmdline()[:3])[:80])
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self.sample()
        self.done.set()
        self.join()


def machine_busy() -> float:
    """CPU seconds the whole machine has used since boot."""
    t = psutil.cpu_times()
    return sum(getattr(t, n, 0.0) for n in ("user", "nice", "system", "irq", "softirq", "steal"))


# --------------------------------------------------------------------------- worker probes


def install_probes() -> int:
    """In a worker process (``client.run``): CPU timers (``time.thread_time``, the task
    thread's own CPU) around hpctune's functions; returns the worker's pid."""
    import sys
    import time
    import types

    if "_hpctune_breakdown" in sys.modules:
        return os.getpid()
    import skops.io

    from hpctune.data.reader import CellReader
    from hpctune.execution import tasks
    from hpctune.output.folder import Store
    from hpctune.output.journal import Journal
    from hpctune.search import model_file, partition

    probes = types.ModuleType("_hpctune_breakdown")
    probes.cpu = {}
    probes.calls = {}
    probes.errors = []
    sys.modules["_hpctune_breakdown"] = probes

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            except BaseException:
                if len(probes.errors) < 3:
                    import traceback

                    probes.errors.append(f"{name}: {traceback.format_exc()}")
                raise
            finally:
                probes.cpu[name] = probes.cpu.get(name, 0.0) + time.thread_time() - started
                probes.calls[name] = probes.calls.get(name, 0) + 1

        return wrapper

    make_search = partition.make_search

    def probed_make_search(*args: Any, **kwargs: Any) -> Any:
        searcher = make_search(*args, **kwargs)
        searcher.fit = timed("fit", searcher.fit)
        return searcher

    def probe(owner: Any, attribute: str, name: str) -> None:
        if hasattr(owner, attribute):  # the model store changed: probe what is there
            setattr(owner, attribute, timed(name, getattr(owner, attribute)))

    probe(tasks, "run_batch", "task")
    probe(tasks, "record_result", "record")
    probe(CellReader, "read", "read")
    probe(partition.PartitionSearch, "run", "search")
    probe(partition, "select_rows", "rows")
    probe(partition, "holdout_scores", "test scores")
    partition.make_search = probed_make_search
    probe(skops.io, "dumps", "serialise")  # before hpctune wrote skops' format itself
    probe(model_file, "dump_model", "serialise")
    probe(Store, "write_model", "model file")  # one file per model
    try:  # models appended to a pack by the journal (hpctune.output.packs)
        from hpctune.output.packs import ModelPack

        probe(ModelPack, "append", "model file")
        probes.nested = True  # the model's write inside Journal.append
    except ImportError:
        probes.nested = False
    probe(Journal, "append", "journal")
    return os.getpid()


def read_probes() -> dict[str, Any]:
    """In a worker: its timers, and its threads' CPU seconds."""
    probes = sys.modules.get("_hpctune_breakdown")
    return {
        "cpu": dict(probes.cpu) if probes else {},
        "calls": dict(probes.calls) if probes else {},
        "errors": list(probes.errors) if probes else [],
        "nested": bool(getattr(probes, "nested", False)),
        "threads": thread_cpu(),
    }


def worker_threads() -> dict[str, float]:
    """In a worker: its threads' CPU seconds."""
    return thread_cpu()


# --------------------------------------------------------------------------- py-spy


class PySpy:
    """py-spy sampling this process's threads (``--nonblocking``: the process is not paused)."""

    def __init__(self, enabled: bool, exclude: set[int]) -> None:
        self.exclude = exclude
        self.exe = shutil.which("py-spy") if enabled else None
        self.proc: subprocess.Popen | None = None
        self.out = Path(tempfile.mkstemp(prefix="breakdown-pyspy-", suffix=".txt")[1])

    def start(self) -> None:
        if self.exe is None:
            self.out.unlink(missing_ok=True)
            return
        cmd = [self.exe, "record", "--pid", str(os.getpid()), "--threads", "--nonblocking"]
        cmd += ["--format", "raw", "--rate", "50", "--output", str(self.out)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.exclude.add(self.proc.pid)

    def stop(self) -> dict[str, int] | None:
        """Samples of the ``IO loop`` thread by category; None without py-spy."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        try:
            return loop_samples(self.out.read_text(errors="replace"))
        finally:
            self.out.unlink(missing_ok=True)


def loop_samples(raw: str) -> dict[str, int]:
    """The ``IO loop`` thread's samples in py-spy's raw output, by category."""
    counts: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack.startswith("thread (") or ": IO loop;" not in stack.split(";", 1)[0] + ";":
            continue
        if stack.endswith("(selectors.py:468)") or "Selector.select (" in stack.rsplit(";", 1)[-1]:
            continue  # waiting for events: py-spy --nonblocking cannot tell it is idle
        category = "event loop's own"
        for frame in reversed(stack.split(";")):
            found = next((c for c, files in CATEGORIES if any(f in frame for f in files)), None)
            if found:
                category = found
                break
        counts[category] = counts.get(category, 0) + int(n)
        if any(mark in stack for mark in PERIODIC):
            counts[PERIODIC_KEY] = counts.get(PERIODIC_KEY, 0) + int(n)
    return counts


# --------------------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("spec")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1 thread)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--ideal-cpu", type=float, help="the ideal's CPU seconds (ideal.py)")
    parser.add_argument("--ideal", action="store_true", help="run ideal.py first")
    parser.add_argument("--no-py-spy", action="store_true", help="no split of the loop thread")
    parser.add_argument("--json", dest="json_out", help="write the figures to this file")
    args = parser.parse_args(argv)
    created = psutil.Process().create_time()
    before_start = time.time() - created - (time.perf_counter() - T0)  # interpreter start
    ideal = None
    if args.ideal:
        cmd = [sys.executable, str(HERE / "ideal.py"), args.spec, "--json"]
        for item in args.overrides:
            cmd += ["--set", item]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        ideal = json.loads(done.stdout[done.stdout.find("{") :])["cpu_seconds"]
    elif args.ideal_cpu is not None:
        ideal = args.ideal_cpu
    T = {"t0": T0 - before_start}
    busy0 = machine_busy()
    tree = Tree()
    tree.start()
    figures = _run(args, tree, T)
    tree.stop()
    figures["machine_busy"] = machine_busy() - busy0
    report = summarise(figures, T, tree, args.workers, ideal)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1))
    print_report(report)
    return 0 if report["exit_code"] in (0, 3) else 1


def _run(args: argparse.Namespace, tree: Tree, T: dict[str, float]) -> dict[str, Any]:
    """The run with its milestones: every figure taken on the way."""
    from hpctune.cli import main as hpctune_main
    from hpctune.execution import driver as execute
    from hpctune.execution.batches import BatchRunner
    from hpctune.output.folder import Store

    F: dict[str, Any] = {"workers_at": {}, "probes": {}}
    spy = PySpy(not args.no_py_spy, tree.exclude)
    start_cluster = execute.start_cluster
    import contextlib

    @contextlib.contextmanager
    def probed_cluster(job: Any, **kwargs: Any) -> Any:
        with start_cluster(job, **kwargs) as handle:
            client = handle.client
            if client is None:
                raise SystemExit("breakdown.py measures worker processes: cluster.processes")
            F["worker_pids"] = client.run(install_probes)
            try:
                yield handle
            finally:
                T["collect"] = time.perf_counter()
                F["probes"] = client.run(read_probes)
                tree.sample()
                F["tree_at_collect"] = dict(tree.cpu)

    run = BatchRunner.run

    def timed_run(self: Any) -> None:
        client = self.client
        F["workers_at"]["run"] = client.run(worker_threads)
        tree.sample()
        F["tree_at_run"] = dict(tree.cpu)
        F["driver_at_run"] = thread_cpu()
        F["process_cpu_at_run"] = time.process_time()
        T["run"] = time.perf_counter()
        spy.start()
        try:
            run(self)
        finally:
            T["run_end"] = time.perf_counter()
            F["driver_at_run_end"] = thread_cpu()
            F["process_cpu_at_run_end"] = time.process_time()
            F["loop_samples"] = spy.stop()
            F["workers_at"]["run_end"] = client.run(worker_threads)
            tree.sample()
            F["tree_at_run_end"] = dict(tree.cpu)
            F["partitions"] = self.counts.done - self.counts.resumed

    write_results = Store.write_results

    def timed_results(self: Any, *a: Any, **k: Any) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return write_results(self, *a, **k)
        finally:
            F["results_nc"] = (time.perf_counter() - started, time.thread_time() - cpu)

    from hpctune.execution import batches

    outcome_of = batches.batch_outcome

    def timed_outcome(*a: Any, **k: Any) -> Any:
        try:
            outcome = outcome_of(*a, **k)
        except Exception:
            import traceback

            F.setdefault("driver_errors", []).append(traceback.format_exc())
            raise
        F.setdefault("tasks", []).append(
            [len(outcome["statuses"]), outcome["seconds"], outcome.get("cpu_seconds")]
        )
        return outcome

    batches.batch_outcome = timed_outcome
    execute.start_cluster = probed_cluster
    BatchRunner.run = timed_run
    Store.write_results = timed_results
    overrides = [f"cluster.workers={args.workers}", "cluster.threads=1", *args.overrides]
    cli = ["run", args.spec, "--restart", "--quiet"]
    for item in overrides:
        cli += ["--set", item]
    try:
        hpctune_main(cli)
    except SystemExit as exc:
        F["exit_code"] = exc.code
    else:
        F["exit_code"] = 0
    T["end"] = time.perf_counter()
    F["driver_at_end"] = thread_cpu()
    F["process_cpu_at_end"] = time.process_time()
    return F


# --------------------------------------------------------------------------- the figures


def summarise(
    F: dict[str, Any], T: dict[str, float], tree: Tree, workers: int, ideal: float | None
) -> dict[str, Any]:
    """The breakdown of one run's CPU seconds, from the readings taken on the way."""
    if "run" not in T:
        return {"exit_code": F.get("exit_code"), "error": "no batch was submitted"}
    wpids = set(F.get("worker_pids", {}).values())
    drv_run, drv_end = F["driver_at_run"], F["driver_at_run_end"]
    drv_all = F["driver_at_end"]
    run_threads = delta(drv_end, drv_run)

    def by(selector: Any, figures: dict[str, float]) -> float:
        return sum(v for k, v in figures.items() if selector(_name(k)))

    main_cpu = by(lambda n: n == "MainThread", run_threads)
    loop_cpu = by(lambda n: n == "IO loop", run_threads)
    tool = by(lambda n: n.startswith("breakdown"), run_threads)
    other_cpu = sum(run_threads.values()) - main_cpu - loop_cpu - tool
    loop_split: dict[str, float] = {}
    periodic = None
    samples = F.get("loop_samples")
    if samples:
        total = sum(v for k, v in samples.items() if k != PERIODIC_KEY)
        loop_split = {k: loop_cpu * v / total for k, v in samples.items() if k != PERIODIC_KEY}
        periodic = loop_cpu * samples.get(PERIODIC_KEY, 0) / total

    # workers: CPU per worker process and thread, in the run phase and after it
    at_run, at_end = F["workers_at"]["run"], F["workers_at"]["run_end"]
    probes = F["probes"]
    w_run = {a: delta(at_end[a], at_run.get(a, {})) for a in at_end}
    w_threads: dict[str, float] = {}
    for threads in w_run.values():
        for key, value in threads.items():
            name = _name(key)
            w_threads[name] = w_threads.get(name, 0.0) + value
    workers_run = sum(w_threads.values())
    timers: dict[str, float] = {}
    calls: dict[str, int] = {}
    for p in probes.values():
        for k, v in p["cpu"].items():
            timers[k] = timers.get(k, 0.0) + v
        for k, v in p["calls"].items():
            calls[k] = calls.get(k, 0) + v
    g = timers.get
    # with model packs the model's write is inside the journal's append, else beside it
    nested = any(p.get("nested") for p in probes.values())
    journal_own = g("journal", 0.0) - (g("model file", 0.0) if nested else 0.0)
    split = {
        "fit (dask-ml search, sync scheduler)": g("fit", 0.0),
        "reading (CellReader.read)": g("read", 0.0),
        "rows (NaN drop, test period)": g("rows", 0.0),
        "test-period scores": g("test scores", 0.0),
        "serialise (skops)": g("serialise", 0.0),
        "model file or pack (write)": g("model file", 0.0),
        "journal record (append)": journal_own,
        "record dict": g("record", 0.0) - g("model file", 0.0) - journal_own,
        "search's rest (cv, best, predict, cv_results)": g("search", 0.0)
        - g("fit", 0.0)
        - g("rows", 0.0)
        - g("test scores", 0.0)
        - g("serialise", 0.0),
        "task's rest (state, partition rows)": g("task", 0.0)
        - g("read", 0.0)
        - g("search", 0.0)
        - g("record", 0.0),
    }
    # workers' CPU beyond their task timers: distributed's threads and the task thread's rest
    split["worker, outside the tasks (loop, comms, profiler)"] = workers_run - g("task", 0.0)

    # processes other than the driver and the workers: the forkserver (its imports) and helpers
    def others(snapshot: dict[int, float]) -> float:
        return sum(v for pid, v in snapshot.items() if pid not in wpids)

    def workers_of(snapshot: dict[int, float]) -> float:
        return sum(v for pid, v in snapshot.items() if pid in wpids)

    driver_startup = F["process_cpu_at_run"] - by(lambda n: n.startswith("breakdown"), drv_run)
    startup_cpu = driver_startup + others(F["tree_at_run"]) + workers_of(F["tree_at_run"])
    tail_driver = (
        F["process_cpu_at_end"]
        - F["process_cpu_at_run_end"]
        - by(lambda n: n.startswith("breakdown"), delta(drv_all, drv_end))
    )
    tail_children = (others(tree.cpu) - others(F["tree_at_run_end"])) + (
        workers_of(tree.cpu) - workers_of(F["tree_at_run_end"])
    )
    wall = T["end"] - T["t0"]
    tool_cpu = by(lambda n: n.startswith("breakdown"), drv_all)
    driver_total = F["process_cpu_at_end"] - tool_cpu
    tree_cpu = driver_total + sum(tree.cpu.values())
    cores = min(workers, os.cpu_count() or 1)
    partitions = F.get("partitions") or 0
    run_driver = main_cpu + loop_cpu + other_cpu
    per = (lambda s: 1000 * s / partitions) if partitions else (lambda s: float("nan"))
    sched = loop_split.get("scheduler")
    report = {
        "exit_code": F.get("exit_code"),
        "workers": workers,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "partitions": partitions,
        "wall": wall,
        "startup_wall": T["run"] - T["t0"],
        "run_wall": T["run_end"] - T["run"],
        "tail_wall": T["end"] - T["run_end"],
        "tree_cpu": tree_cpu,
        "ideal_cpu": ideal,
        "startup_cpu": startup_cpu,
        "startup_driver_cpu": driver_startup,
        "startup_forkserver_cpu": others(F["tree_at_run"]),
        "startup_workers_cpu": workers_of(F["tree_at_run"]),
        "workers_run_cpu": workers_run,
        "workers_threads": w_threads,
        "workers_split": split,
        "calls": calls,
        "workers_beyond_ideal": None if ideal is None else workers_run - ideal,
        "driver_main_cpu": main_cpu,
        "driver_loop_cpu": loop_cpu,
        "driver_other_threads_cpu": other_cpu,
        "driver_other_threads": {
            _name(k): v for k, v in run_threads.items() if v > 0.005 and _name(k) != "MainThread"
        },
        "loop_split": loop_split,
        "loop_samples": samples,
        "driver_run_cpu": run_driver,
        "driver_sched_ms_per_partition": per(run_driver),
        "scheduler_ms_per_partition": None if sched is None else per(sched),
        "loop_periodic_cpu": periodic,
        "loop_periodic_ms_per_second": None
        if periodic is None
        else 1000 * periodic / (T["run_end"] - T["run"]),
        "driver_sched_not_periodic_ms_per_partition": None
        if periodic is None
        else per(run_driver - periodic),
        "driver_ms_per_partition": None if sched is None else per(run_driver - sched),
        "tasks": F.get("tasks", []),
        "driver_errors": F.get("driver_errors", [])[:3],
        "worker_errors": [e for p in probes.values() for e in p.get("errors", [])],
        "tail_cpu": tail_driver + tail_children,
        "tail_driver_cpu": tail_driver,
        "results_nc": F.get("results_nc"),
        "idle_core_seconds": cores * wall - tree_cpu,
        "others_cores": max(0.0, F["machine_busy"] - tree_cpu) / wall,
    }
    return report


def print_report(r: dict[str, Any]) -> None:
    if "error" in r:
        print(f"exit {r['exit_code']}: {r['error']}")
        return

    def line(what: str, seconds: float | None, note: str = "") -> None:
        text = "-" if seconds is None else f"{seconds:9.2f}"
        print(f"  {what:<52} {text:>9}  {note}")

    n = r["partitions"]
    print(
        f"{r['workers']} workers on {r['cores']} cores, {n} partitions, exit {r['exit_code']}, "
        f"load {r['load_average']}; wall {r['wall']:.1f} s (start-up {r['startup_wall']:.1f}, "
        f"run {r['run_wall']:.1f}, tail {r['tail_wall']:.1f}); "
        f"others {r['others_cores']:.2f} cores"
    )
    print(f"  {'CPU seconds':<52} {'':>9}")
    line("whole process tree", r["tree_cpu"])
    line("ideal: scikit-learn's searches alone (ideal.py)", r["ideal_cpu"])
    line(
        "start-up (driver + forkserver + workers)",
        r["startup_cpu"],
        f"{r['startup_driver_cpu']:.2f} + {r['startup_forkserver_cpu']:.2f} + "
        f"{r['startup_workers_cpu']:.2f}",
    )
    line("run: workers, all threads", r["workers_run_cpu"])
    line("  beyond the ideal", r["workers_beyond_ideal"])
    for what, seconds in r["workers_split"].items():
        line(f"  {what}", seconds)
    for what, seconds in sorted(thread_kinds(r["workers_threads"]).items(), key=lambda kv: -kv[1]):
        line(f"  workers' {what}", seconds)
    line("run: driver main thread (runner loop, progress)", r["driver_main_cpu"])
    line("run: driver event loop (scheduler, nannies, client)", r["driver_loop_cpu"])
    for what, seconds in r["loop_split"].items():
        line(f"  {what} (py-spy share)", seconds)
    line("run: driver's other threads", r["driver_other_threads_cpu"])
    line("tail (results.nc, cluster stop)", r["tail_cpu"])
    if r["results_nc"]:
        line("  results.nc (main thread CPU)", r["results_nc"][1])
    line("idle core-seconds", r["idle_core_seconds"])
    print(
        f"  per partition: driver + scheduler {r['driver_sched_ms_per_partition']:.3f} ms"
        + (
            f" (scheduler {r['scheduler_ms_per_partition']:.3f}, the rest "
            f"{r['driver_ms_per_partition']:.3f})"
            if r["scheduler_ms_per_partition"] is not None
            else ""
        )
        + (
            f"; workers beyond the ideal {1000 * r['workers_beyond_ideal'] / n:.3f} ms "
            f"({100 * r['workers_beyond_ideal'] / r['ideal_cpu']:.0f}% of the ideal)"
            if r["workers_beyond_ideal"] is not None and n
            else ""
        )
    )


def thread_kinds(threads: dict[str, float]) -> dict[str, float]:
    """The workers' CPU seconds by kind of thread: the task threads (distributed's
    ``Dask-Default-Threads``), the main thread (the worker's event loop), the others."""
    out: dict[str, float] = {}
    for name, seconds in threads.items():
        if "Dask-Default-Threads" in name:
            name = "task threads"
        elif name == "MainThread":
            name = "main thread (event loop, comms, monitors)"
        out[name] = out.get(name, 0.0) + seconds
    return out


def side_by_side_rows(reports: list[dict[str, Any]]) -> list[tuple[str, list[float | None]]]:
    """The figures of several runs (one a worker count), one row per figure."""

    def col(fn: Any) -> list[float | None]:
        out = []
        for r in reports:
            try:
                out.append(fn(r))
            except (KeyError, TypeError, ZeroDivisionError):
                out.append(None)
        return out

    def loop(name: str) -> Any:
        return lambda r: r["loop_split"][name]

    per = (lambda key: lambda r: 1000 * r[key] / r["partitions"]) if reports else None
    rows = [
        ("load average (1 min) at the end", col(lambda r: r["load_average"][0])),
        ("others' CPU, cores", col(lambda r: r["others_cores"])),
        ("wall s", col(lambda r: r["wall"])),
        ("  start-up s (to the first batch)", col(lambda r: r["startup_wall"])),
        ("  tail s (last partition -> exit)", col(lambda r: r["tail_wall"])),
        ("CPU s, whole process tree", col(lambda r: r["tree_cpu"])),
        ("fits: the ideal (scikit-learn's searches)", col(lambda r: r["ideal_cpu"])),
        ("start-up (driver + forkserver + workers)", col(lambda r: r["startup_cpu"])),
        ("workers during the run", col(lambda r: r["workers_run_cpu"])),
        ("  beyond the ideal", col(lambda r: r["workers_beyond_ideal"])),
        (
            "  beyond the ideal, % of the ideal",
            col(lambda r: 100 * r["workers_beyond_ideal"] / r["ideal_cpu"]),
        ),
    ]
    names = list(reports[0]["workers_split"]) if reports else []
    rows += [(f"  {n}", col(lambda r, n=n: r["workers_split"][n])) for n in names]
    kinds = [thread_kinds(r["workers_threads"]) for r in reports]
    threads = sorted(
        {k for kind in kinds for k, v in kind.items() if v >= 0.01},
        key=lambda k: -max(kind.get(k, 0.0) for kind in kinds),
    )
    rows += [(f"  workers' threads: {t}", [kind.get(t, 0.0) for kind in kinds]) for t in threads]
    rows += [
        ("driver during the run, all threads", col(lambda r: r["driver_run_cpu"])),
        ("  main thread (runner loop, progress)", col(lambda r: r["driver_main_cpu"])),
        ("  event loop thread", col(lambda r: r["driver_loop_cpu"])),
    ]
    parts = sorted({k for r in reports for k in r.get("loop_split", {})})
    rows += [(f"    {p} (py-spy share)", col(loop(p))) for p in parts]
    rows += [("    periodic (monitors, heartbeats)", col(lambda r: r["loop_periodic_cpu"]))]
    rows += [
        ("  other threads", col(lambda r: r["driver_other_threads_cpu"])),
        ("tail (results.nc, cluster stop)", col(lambda r: r["tail_cpu"])),
        ("idle core-s (min(workers, cores) x wall - tree)", col(lambda r: r["idle_core_seconds"])),
        ("tasks submitted (batches)", col(lambda r: r["calls"]["task"])),
        ("ms per partition: driver + scheduler", col(per("driver_run_cpu"))),
        (
            "  not periodic (per task and partition)",
            col(lambda r: r["driver_sched_not_periodic_ms_per_partition"]),
        ),
        (
            "periodic loop work, ms CPU per wall second",
            col(lambda r: r["loop_periodic_ms_per_second"]),
        ),
        ("  of which the scheduler (py-spy share)", col(lambda r: r["scheduler_ms_per_partition"])),
        ("ms per partition: workers beyond the ideal", col(per("workers_beyond_ideal"))),
    ]
    return rows


def print_side_by_side(reports: list[dict[str, Any]]) -> None:
    """One column per run (``workers`` workers), one row per figure."""
    reports = [r for r in reports if "error" not in r]
    if not reports:
        return
    head = f"{'':<50}" + "".join(f"{str(r['workers']) + ' workers':>12}" for r in reports)
    print(head)
    print("-" * len(head))
    for what, values in side_by_side_rows(reports):
        cells = "".join(f"{'-':>12}" if v is None else f"{v:>12.3f}" for v in values)
        print(f"{what:<50}{cells}")


if __name__ == "__main__":
    sys.exit(main())
