"""Start and stop the Dask cluster a run computes on.

``cluster.mode`` chooses where the workers run:

- ``local``: a :class:`distributed.LocalCluster` of worker processes on this machine (inside a
  one-task allocation: on the CPUs the job was given); or, for a few partitions with an
  estimator whose fits release the GIL, workers that are threads of this process, on dask's
  local scheduler (``cluster.processes``, :func:`plan_execution`, :class:`WorkerThreads`).
- ``allocation``: the nodes of the current batch job. The scheduler runs in this process
  (the batch script, or the ``salloc`` shell); workers start on every allocated node through
  the batch system's launcher (``srun``, ``pbsdsh`` ..., :mod:`hpctune.schedulers`), one per CPU
  unless the spec says otherwise.
- ``jobqueue``: worker jobs that dask-jobqueue submits with the spec's scheduler resources
  (:mod:`hpctune.jobqueue`).
- ``auto``: ``allocation`` inside a job of more than one node or task, else ``local``; on a
  login node (a batch system's commands, no job) on :data:`LOGIN_NODE_CORES` cores, with a
  warning.

Every mode talks TLS with credentials made for the run (:mod:`hpctune.security`); every HTTP
endpoint (the dashboard) listens on 127.0.0.1 only, reached from elsewhere with ``ssh -L``.
Worker threads talk to nothing: no listener at all.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .allocation import plan_layout
from .errors import AllocationError, ClusterError, RunStopped
from .schedulers import registry
from .schedulers.base import Allocation
from .schedulers.launch import Layout
from .spec import Job

log = logging.getLogger("hpctune")

MODES = ("local", "allocation", "jobqueue")
DASHBOARD_ADDRESS = "127.0.0.1:0"
"""HTTP servers (dashboard or not) listen on localhost only, on a free port."""

WORKER_CONFIG: dict[str, Any] = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask settings for the nannies hpctune starts (local, allocation and jobqueue workers).

distributed starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``, which returns freed
memory to the system at once; setting it also turns off glibc's adaptive thresholds, so the
allocations of every fit fault their pages in again. Measured on the ``heavy`` benchmark
(StandardScaler + SVR): each search 5% slower (benchmarks/RESULTS.md). hpctune's tasks keep
no data between them (a worker's memory is the few chunks it reads), so the worker processes
use glibc's defaults, as the serial scikit-learn run they are compared with does.
"""


def distributed_log_level() -> int:
    """The level of Dask's own log records shown on stderr, in this process and in the local
    workers: errors with ``-v`` (hpctune's log at INFO), else none. The run reports what
    matters itself (a failed partition and why, a worker that died); Dask's records at a stop
    or at the end of a run are of its shutdown (a worker's heartbeat to a scheduler already
    closed: ``CommClosedError ... Stream is closed``), not for the user's terminal."""
    return logging.ERROR if log.isEnabledFor(logging.INFO) else logging.CRITICAL


GIL_RELEASING_STEPS = frozenset(
    f"sklearn.{path}"
    for path in (
        "svm.SVR", "svm.NuSVR", "svm.SVC", "svm.NuSVC",
        "ensemble.RandomForestRegressor", "ensemble.RandomForestClassifier",
        "ensemble.ExtraTreesRegressor", "ensemble.ExtraTreesClassifier",
        "ensemble.GradientBoostingRegressor", "ensemble.GradientBoostingClassifier",
        "tree.DecisionTreeRegressor", "tree.DecisionTreeClassifier",
        "tree.ExtraTreeRegressor", "tree.ExtraTreeClassifier",
        "neighbors.KNeighborsRegressor", "neighbors.KNeighborsClassifier",
        "preprocessing.StandardScaler", "preprocessing.MinMaxScaler",
        "preprocessing.MaxAbsScaler", "preprocessing.RobustScaler",
    )
)  # fmt: skip
"""Estimator steps whose fits and predictions spend their time in compiled code that releases
the GIL: two threads of one process do twice the work of one in the same time
(``python benchmarks/gil.py``: SVR 0.99, gradient boosting 1.00, random forest 0.95,
k-neighbours 0.84; the scalers are cheap numpy passes). Measured and left out:
HistGradientBoosting 0.38 (its OpenMP threads), MLPRegressor 0.31, Ridge 0.35 (small fits
whose time is Python's). Classifiers and the other trees and SVMs listed share the compiled
code of those measured."""


@dataclass
class ClusterHandle:
    client: Any
    """The Dask client; None when the workers are threads of this process (:attr:`pool`)."""
    mode: str
    workers: int
    """Worker processes connected when the run begins (jobqueue: asked for)."""
    threads: int
    """Threads per worker: tasks that may run at once on each worker."""
    dashboard: str | None = None
    description: str = ""
    address: str = ""
    """The scheduler's address, e.g. ``tls://10.1.2.3:40123``."""
    tunnel: str | None = None
    """The ``ssh -L`` command that reaches the dashboard from another machine."""
    processes: bool = True
    """False: the workers are threads of this process (:func:`plan_execution`)."""
    pool: WorkerThreads | None = None
    """The worker threads, when the workers are threads of this process (``client`` is None)."""

    @property
    def slots(self) -> int:
        return self.workers * self.threads


def node_name() -> str:
    """The scheduler's name for this node, else the host name."""
    for variable in ("HPCTUNE_NODE_NAME", *registry.node_variables()):
        value = os.environ.get(variable)
        if value:
            return value
    return socket.gethostname().split(".")[0]


def available_cores() -> int:
    """CPUs this process may use: its affinity, capped by what a batch job was given where
    the batch system does not bind jobs to their CPUs."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    for variable in registry.cpu_variables():
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return min(cores, int(value))
    return cores


def scratch_dir() -> str | None:
    """Node-local scratch for worker spill files, when the scheduler provides one."""
    for variable in registry.scratch_variables():
        value = os.environ.get(variable)
        if value and os.path.isdir(value):
            return value
    return None


def choose_mode(job: Job, allocation: Allocation | None) -> str:
    """The mode to run in: ``cluster.mode``, with ``auto`` decided from ``allocation`` (the
    batch job this process runs in, detected once by the command)."""
    mode = job.cluster.mode
    if mode != "auto":
        return mode
    return "allocation" if allocation is not None and allocation.multi else "local"


def resolve_mode(job: Job, environ: Mapping[str, str] | None = None) -> str:
    """:func:`choose_mode` with the allocation detected from ``environ`` (the process's own
    environment by default)."""
    if job.cluster.mode != "auto":
        return job.cluster.mode
    return choose_mode(job, registry.detect_allocation(environ))


def choose_granularity(job: Job, n_todo: int, slots: int) -> str:
    """``partition`` (a task computes whole searches) or ``fit`` (each fit of a search is a task).

    With many partitions, whole searches per task keep every worker busy at the least overhead.
    With few, the last round of searches would leave workers idle: when one task per partition
    would use less than 90% of the slots over the run, the fits of each search become tasks.
    """
    if job.cluster.granularity != "auto":
        return job.cluster.granularity
    if n_todo == 0 or slots <= 1:
        return "partition"
    balance = n_todo / (slots * math.ceil(n_todo / slots))
    return "fit" if balance < 0.9 else "partition"


LOGIN_NODE_CORES = 2
"""Cores a local cluster uses on a login node in mode ``auto`` (:func:`login_node`).

A login node is shared by every user of the machine, and sites end processes that load it:
a run there is a try of the spec on a few partitions, not the computation. Two cores keep a
worker busy while the driver reads and writes, and stay within what sites allow an
interactive user; the whole machine is used by ``hpctune submit``, inside an allocation, or
with ``cluster.mode: local`` set on purpose (which is not capped)."""


def login_node(environ: Mapping[str, str] | None = None) -> str | None:
    """Why this process looks like it runs on a login node (a batch system's submit command
    on PATH, but no batch job: no ``SLURM_JOB_ID``, ``PBS_JOBID`` ...), or None.

    ``HPCTUNE_LOGIN_NODE=0`` says it is not one (a workstation with the SLURM commands),
    ``HPCTUNE_LOGIN_NODE=1`` that it is.
    """
    env = os.environ if environ is None else environ
    said = env.get("HPCTUNE_LOGIN_NODE", "").strip()
    if said in ("0", "1"):
        return "HPCTUNE_LOGIN_NODE=1" if said == "1" else None
    if any(env.get(variable) for variable in registry.job_variables()):
        return None
    for command in registry.submit_programs():
        if shutil.which(command, path=env.get("PATH")):
            return f"{command} on PATH, outside any batch job"
    return None


def capped_on_login_node(job: Job, environ: Mapping[str, str] | None = None) -> str | None:
    """Why a local cluster of ``job`` uses at most :data:`LOGIN_NODE_CORES` cores (mode
    ``auto`` on a login node), or None. ``cluster.mode: local`` is never capped."""
    return login_node(environ) if job.cluster.mode == "auto" else None


def local_cores(job: Job) -> int:
    """Cores a local cluster of ``job`` may use: :func:`available_cores`, at most
    :data:`LOGIN_NODE_CORES` on a login node in mode ``auto``."""
    cores = available_cores()
    return min(cores, LOGIN_NODE_CORES) if capped_on_login_node(job) else cores


def local_layout(job: Job) -> tuple[int, int]:
    """Workers and threads per worker of a local cluster (on a login node in mode ``auto``, no
    more workers than :data:`LOGIN_NODE_CORES` allow, ``cluster.workers`` or not)."""
    threads = job.cluster.threads
    workers = job.cluster.workers or max(1, local_cores(job) // threads)
    if capped_on_login_node(job):
        workers = min(workers, max(1, LOGIN_NODE_CORES // threads))
    return workers, threads


def login_node_warning(job: Job) -> str | None:
    """The warning a local run in mode ``auto`` on a login node gives (None elsewhere)."""
    why = capped_on_login_node(job)
    if why is None:
        return None
    workers, threads = local_layout(job)
    return (
        f"this looks like a login node ({why}), which every user shares: mode auto runs here "
        f"on {workers * threads} of its {available_cores()} cores; compute on the cluster with "
        "hpctune submit or inside an allocation (salloc, qsub -I), or set cluster.mode: local "
        "to use this machine on purpose"
    )


def threads_possible(job: Job, mode: str) -> bool:
    """Whether the spec lets local workers be threads of this process (before the number of
    partitions is known): ``cluster.processes`` false, or ``auto`` with local mode, no
    search timeout, granularity not ``partition`` and every estimator step in
    :data:`GIL_RELEASING_STEPS`."""
    spec = job.cluster
    if spec.processes is True or spec.granularity == "partition":
        return False
    if spec.processes is False:
        return True
    return (
        job.search.timeout is None
        and mode == "local"
        and all(step in GIL_RELEASING_STEPS for step in job.search.estimator)
    )


def threads_allowed(job: Job) -> bool:
    """:func:`threads_possible` in the mode this process's environment gives."""
    return threads_possible(job, resolve_mode(job))


def in_process_workers(
    job: Job,
    n_partitions: int,
    client: Any = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Whether a run of ``n_partitions`` runs its workers as threads of this process (the
    decision :func:`plan_execution` takes, for this process's environment)."""
    if client is not None or resolve_mode(job, environ) != "local":
        return False
    return not plan_execution(job, place(job, "local"), n_partitions).processes


def _processes_note(job: Job, mode: str) -> str | None:
    if job.cluster.processes is not False:
        return None
    if mode == "external":
        return "the run uses the given Dask client's workers"
    if mode != "local":
        return (
            "mode auto chose allocation (a multi-node allocation): the workers are processes "
            "on its nodes"
        )
    return None


def processes_not_honoured(
    job: Job, client: Any = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """Why ``cluster.processes: false`` cannot hold for this run (None when it can, or when it
    is not set). The spec refuses it with mode ``allocation`` or ``jobqueue``; with mode
    ``auto`` the same spec runs on a laptop and in a multi-node allocation, so there the run
    goes on, on worker processes, and says so."""
    if job.cluster.processes is not False:
        return None
    return _processes_note(job, "external" if client is not None else resolve_mode(job, environ))


@dataclass(frozen=True)
class Placement:
    """Where a run's workers are, before its partitions are counted."""

    mode: str
    """``local``, ``allocation``, ``jobqueue``, or ``external`` (a caller's Dask client)."""
    workers: int
    """Worker processes (or threads' groups) expected; allocation: over all hosts."""
    threads: int
    """Tasks at once per worker."""
    allocation: Allocation | None = None
    """The batch job this process runs in, detected once by the command."""
    layout: Layout | None = None
    """Allocation mode: the workers of each host."""
    jobqueue: Any = None
    """Jobqueue mode: the worker jobs' settings (:class:`hpctune.jobqueue.JobqueuePlan`)."""

    @property
    def slots(self) -> int:
        return self.workers * self.threads


@dataclass(frozen=True)
class ExecutionPlan:
    """How a run computes, decided once by :func:`plan_execution` and only read afterwards: by
    the cluster's start, the runners, the estimate and the run's summary."""

    placement: Placement
    processes: bool
    """False: the workers are threads of the hpctune process (dask's local scheduler)."""
    granularity: str
    """``partition``: a task computes whole searches; ``fit``: each fit is a task."""
    partitions: int | None
    """The partitions left to compute when the plan was decided (None: not counted)."""
    notes: tuple[str, ...] = ()
    """Warnings the run gives once (``cluster.processes: false`` not honoured)."""
    threads_reason: str = ""
    """Why the workers are threads of this process (empty for processes)."""

    @property
    def mode(self) -> str:
        return self.placement.mode

    @property
    def workers(self) -> int:
        return self.placement.workers

    @property
    def threads(self) -> int:
        return self.placement.threads

    @property
    def slots(self) -> int:
        return self.placement.slots

    @property
    def allocation(self) -> Allocation | None:
        return self.placement.allocation


def place(
    job: Job,
    mode: str,
    allocation: Allocation | None = None,
    *,
    client: Any = None,
    max_workers: int | None = None,
) -> Placement:
    """Where the workers of ``job`` in ``mode`` are, and how many: a caller's ``client``
    (mode ``external``), this machine (:func:`local_layout`, at most ``max_workers``), the
    hosts of ``allocation``, or the worker jobs of dask-jobqueue."""
    if mode == "external":
        nthreads = client.nthreads()
        return Placement("external", len(nthreads), max(nthreads.values(), default=1))
    if mode == "local":
        workers, threads = local_layout(job)
        if max_workers is not None:
            workers = max(1, min(workers, max_workers))
        return Placement("local", workers, threads, allocation=allocation)
    if mode == "allocation":
        if allocation is None:
            raise ClusterError(
                "cluster.mode allocation: this is not a batch job (none of "
                f"{', '.join(registry.job_variables())} is set); run inside a batch or "
                f"interactive job ({', '.join(registry.submit_programs())}), or choose mode "
                "local or jobqueue"
            )
        registry.scheduler_for(allocation, job.scheduler.kind).check_allocation(allocation)
        try:
            layout = plan_layout(allocation, job.cluster)
        except AllocationError as exc:
            raise ClusterError(str(exc)) from None
        return Placement(
            "allocation", layout.total_workers, layout.threads, allocation=allocation, layout=layout
        )
    from . import jobqueue  # jobqueue imports this module for the handle and the waiting

    settings = jobqueue.plan(job, None)
    return Placement(
        "jobqueue",
        settings.expected_workers,
        settings.threads,
        allocation=allocation,
        jobqueue=settings,
    )


def plan_execution(
    job: Job, placement: Placement, partitions_left: int | None, *, need_client: bool = False
) -> ExecutionPlan:
    """The one decision of how a run computes: granularity, then threads or processes, from
    the partitions left and the placement's slots.

    Worker threads of this process only for a local run that starts its own workers and needs
    no Dask client, where the spec allows them (:func:`threads_possible`) and each fit is a
    task (or ``cluster.processes: false``): the partitions' rows are then read here, never in a
    worker thread (NetCDF reads are not thread-safe), and the tasks are fits and scores of
    estimators that release the GIL (the ``onecell`` benchmark, benchmarks/RESULTS.md).
    ``need_client``: the command submits its own tasks (plan's sample, predict).
    """
    mode = placement.mode
    granularity = choose_granularity(job, partitions_left or 0, placement.slots)
    threads = (
        not need_client
        and mode == "local"
        and threads_possible(job, mode)
        and (job.cluster.processes is False or granularity == "fit")
    )
    note = _processes_note(job, mode)
    reason = ""
    if threads:
        granularity = "fit"  # worker threads never read NetCDF
        reason = (
            "cluster.processes: false"
            if job.cluster.processes is False
            else "the estimator releases the GIL"
        )
    return ExecutionPlan(
        placement=placement,
        processes=not threads,
        granularity=granularity,
        partitions=partitions_left,
        notes=() if note is None else (f"cluster.processes: false is not honoured: {note}",),
        threads_reason=reason,
    )


@contextlib.contextmanager
def start_cluster(
    job: Job, in_process: bool = False, *, plan: ExecutionPlan | None = None
) -> Iterator[ClusterHandle]:
    """Start the cluster ``plan`` describes, wait for its workers, and stop it afterwards.

    Without ``plan``: the plan of ``job.cluster`` in this process's environment, its local
    workers threads of this process when ``in_process``.
    """
    if plan is None:
        allocation = registry.detect_allocation()
        placement = place(job, choose_mode(job, allocation), allocation)
        plan = ExecutionPlan(
            placement, processes=not in_process, granularity="partition", partitions=None
        )
    started = time.monotonic()
    warning = login_node_warning(job) if plan.mode == "local" else None
    if warning:
        log.warning("%s", warning)
    if plan.mode == "local" and not plan.processes:
        context = _worker_threads(job, plan)
    elif plan.mode == "local":
        context = _local_cluster(job, plan)
    elif plan.mode == "allocation":
        context = _allocation_cluster(job, plan)
    else:
        from .jobqueue import jobqueue_cluster

        context = jobqueue_cluster(job, plan)
    with context as handle:
        log.info("%s; ready in %.1f s", handle.description, time.monotonic() - started)
        yield handle


@contextlib.contextmanager
def open_cluster(job: Job, plan: ExecutionPlan, client: Any = None) -> Iterator[ClusterHandle]:
    """The cluster of every command (run, plan, predict): the caller's ``client``, else the one
    :func:`start_cluster` starts from ``plan`` and stops again."""
    if client is not None:
        yield existing_cluster(client)
        return
    with start_cluster(job, plan=plan) as handle:
        yield handle


# --------------------------------------------------------------------------- local


def prepare_local_workers(job: Job) -> None:
    """Start the process local workers are forked from (:mod:`hpctune.forkserver`), so that
    its imports run beside the driver's own start-up and the data checks. Nothing else starts:
    the workers do, once the checks have passed."""
    import dask

    # distributed's defaults join Dask's config first: leaving the ``dask.config.set`` below
    # would remove a ``distributed`` section that it had to create
    import distributed  # noqa: F401

    from . import forkserver

    with dask.config.set(WORKER_CONFIG):
        forkserver.start(forkserver.worker_modules(job.search.estimator))


@contextlib.contextmanager
def _local_cluster(job: Job, plan: ExecutionPlan) -> Iterator[ClusterHandle]:
    import dask
    from distributed import Client, LocalCluster

    from . import forkserver
    from .security import temporary_security

    workers, threads = plan.workers, plan.threads
    security = temporary_security()
    modules = forkserver.worker_modules(job.search.estimator)
    with dask.config.set(WORKER_CONFIG), forkserver.worker_start(modules):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            protocol="tls://",
            security=security,
            dashboard_address=DASHBOARD_ADDRESS,  # its HTTP server, dashboard or not, local
            local_directory=scratch_dir(),
            silence_logs=distributed_log_level(),
        )
    try:
        client = Client(cluster, security=security)
        try:
            link = client.dashboard_link if job.cluster.dashboard else None
            yield ClusterHandle(
                client=client,
                mode="local",
                workers=workers,
                threads=threads,
                dashboard=link,
                description=(
                    f"local cluster: {workers} worker processes x {threads} thread(s) "
                    f"({cluster.scheduler_address})"
                ),
                address=cluster.scheduler_address,
            )
        finally:
            client.close()
    finally:
        cluster.close()


class WorkerThreads:
    """The workers of a local run as ``size`` threads of this process, computing the tasks of
    dask's local scheduler (:func:`dask.local.get_async`).

    Every search in flight submits its tasks to the same threads, so that no more tasks than
    slots run at once, however many searches are waiting. The threads are daemons: a run stopped
    by a signal exits without waiting for a fit that is running in compiled code.
    """

    def __init__(self, size: int, name: str = "hpctune-worker") -> None:
        import queue

        self.size = size
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()  # a task is queued before the threads' ends, or refused
        for i in range(size):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def submit(self, fn: Any, *args: Any) -> Any:
        from concurrent.futures import Future

        future: Future[Any] = Future()
        with self._lock:
            if not self._closed:
                self._queue.put((future, fn, args))
                return future
        return _refused(future, "the run's worker threads were closed")

    def get(self, dsk: Any, keys: Any, stop: threading.Event | None = None) -> Any:
        """Compute ``keys`` of the task graph ``dsk`` on these threads (a dask ``get``). Once
        ``stop`` is set no task starts, and the graph ends with :class:`RunStopped`."""
        from concurrent.futures import Future

        from dask.local import get_async

        def submit(fn: Any, *args: Any) -> Any:
            if stop is not None and stop.is_set():
                return _refused(Future(), "the run was stopped")
            return self.submit(fn, *args)

        return get_async(submit, self.size, dsk, keys, get_id=threading.get_ident)

    def close(self) -> None:
        """Start no more tasks: those waiting are cancelled, running ones end on their own."""
        import queue

        with self._lock:
            self._closed = True
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
            for _ in range(self.size):
                self._queue.put(None)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the graph's scheduler, which raises it
                future.set_exception(exc)
            del future, fn, args, item  # a task's result is not kept alive by an idle thread


def _refused(future: Any, why: str) -> Any:
    """``future``, failed with :class:`RunStopped`: a task that will not run."""
    future.set_exception(RunStopped(why))
    return future


@contextlib.contextmanager
def _worker_threads(job: Job, plan: ExecutionPlan) -> Iterator[ClusterHandle]:
    """Workers as threads of this process on dask's local scheduler: no scheduler process or
    event loop, no network listener, nothing pickled; no memory limit (the memory is this
    process's own, with nothing to spill). No Dask dashboard either: there is no distributed
    scheduler to serve one (``cluster.processes: true`` has it)."""
    workers, threads = plan.workers, plan.threads
    pool = WorkerThreads(workers * threads)
    why = plan.threads_reason or "cluster.processes: false"
    try:
        yield ClusterHandle(
            client=None,
            mode="local",
            workers=workers,
            threads=threads,
            description=f"local: {workers * threads} worker threads in this process ({why})",
            processes=False,
            pool=pool,
        )
    finally:
        pool.close()


# --------------------------------------------------------------------------- allocation


@contextlib.contextmanager
def _allocation_cluster(job: Job, plan: ExecutionPlan) -> Iterator[ClusterHandle]:
    from distributed import Client, LocalCluster

    from .launch import WorkerProcesses
    from .schedulers.launch import WorkerSpec, worker_environment
    from .security import write_credentials

    allocation, layout = plan.allocation, plan.placement.layout
    assert allocation is not None and layout is not None  # place() refuses an allocation run
    scheduler = registry.scheduler_for(allocation, job.scheduler.kind)
    try:
        launcher = scheduler.launcher(allocation)
    except AllocationError as exc:
        raise ClusterError(str(exc)) from None
    host = scheduler_host(job.cluster.interface, allocation.hosts)
    credentials = write_credentials(job.output_dir)
    processes: WorkerProcesses | None = None
    cluster = client = None
    stopping = threading.Event()  # set by a stop signal from the workers' start on
    try:
        security = credentials.security()
        cluster = LocalCluster(
            n_workers=0,
            processes=True,
            host=host,
            protocol="tls://",
            security=security,
            dashboard_address=DASHBOARD_ADDRESS,
            silence_logs=distributed_log_level(),
        )
        address = cluster.scheduler_address
        credentials.write_scheduler_file(address, job_id=allocation.job_id)
        client = Client(cluster, security=security)
        worker = WorkerSpec(
            address=address,
            tls_args=tuple(credentials.worker_args()),
            interface=job.cluster.interface,
        )
        commands = launcher.commands(layout, worker, worker_environment())
        log_path = job.log_dir / f"workers-{allocation.job_id}-{os.getpid()}.log"
        processes = WorkerProcesses(commands, log_path)
        log.info("starting %s with %s: %s", layout.describe(), launcher.name, commands[0].shell())
        processes.start()
        with watch_stop_signals() as stopping:
            connected = wait_for_workers(
                client,
                layout.total_workers,
                job.cluster.start_timeout,
                processes=processes,
                what=f"{launcher.name} workers",
                stopping=stopping,
            )
            yield remote_handle(
                client,
                job,
                address=address,
                mode="allocation",
                workers=connected,
                threads=layout.threads,
                what=(
                    f"allocation ({allocation.kind} job {allocation.job_id}): {connected} "
                    f"workers x {layout.threads} thread(s)"
                ),
            )
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        if processes is not None:
            # The scheduler has told the workers to close; their nannies follow within seconds.
            # Stopped by a signal, the launchers are ended sooner: workers still starting were
            # told nothing, and a cancelled job's processes are killed after the scheduler's
            # KillWait (30 s by default), the run's own exit with them.
            processes.stop(timeout=3.0 if stopping.is_set() else 20.0)
        credentials.remove()


def scheduler_host(interface: str | None, hosts: tuple[str, ...] = ()) -> str:
    """The address the scheduler listens on: that of ``cluster.interface``, else the one this
    machine uses to reach the other allocated nodes."""
    from distributed.utils import get_ip, get_ip_interface

    if interface:
        try:
            return get_ip_interface(interface)
        except ValueError as exc:
            raise ClusterError(f"cluster.interface: {exc}") from None
    here = node_name()
    for host in hosts:
        if host != here:
            with contextlib.suppress(OSError):
                return get_ip(socket.gethostbyname(host))
    return get_ip()


def wait_for_workers(
    client: Any,
    expected: int,
    timeout: float,
    *,
    processes: Any = None,
    minimum: int | None = None,
    what: str = "workers",
    hint: str = "",
    stopping: threading.Event | None = None,
) -> int:
    """Wait until ``expected`` workers are connected, at most ``timeout`` seconds.

    Returns the number connected. After the timeout the run goes on with the workers there are
    if at least ``minimum`` (default 1) came, with a warning; with fewer, or when every launcher
    process has exited, it stops with a :class:`ClusterError` that says what happened. When
    ``stopping`` is set (Ctrl-C, SIGTERM) it returns at once: the run then stops in order.
    """
    minimum = 1 if minimum is None else minimum
    deadline = time.monotonic() + timeout
    connected = 0
    while True:
        connected = len(client.nthreads())
        if connected >= expected:
            return connected
        if stopping is not None and stopping.is_set():
            log.warning(
                "stopped while waiting for %s (%d of %d connected)", what, connected, expected
            )
            return connected
        if processes is not None and processes.all_exited():
            codes = ", ".join(str(code) for _, code in processes.exited())
            raise ClusterError(
                f"the {what} exited (exit code {codes}) with {connected} of {expected} "
                f"workers connected; last lines of {processes.log_path}:\n{processes.tail()}"
            )
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if connected >= minimum:
        log.warning(
            "only %d of %d %s connected within cluster.start_timeout=%g s; going on with them",
            connected,
            expected,
            what,
            timeout,
        )
        return connected
    detail = ""
    if processes is not None:
        detail = f"; last lines of {processes.log_path}:\n{processes.tail()}"
    raise ClusterError(
        f"{connected} of {expected} {what} connected within cluster.start_timeout={timeout:g} s"
        f"{hint}{detail}"
    )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


@contextlib.contextmanager
def watch_stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT, SIGTERM or SIGUSR1 while the cluster starts.

    Each signal is passed on to the handler already in place (the run's own, which records
    that the run must stop), so that waiting for workers ends at once and the run then stops in
    order instead of after ``cluster.start_timeout``.
    """
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, frame: Any) -> None:
        old = previous.get(signum)
        if old == signal.SIG_IGN:
            return
        event.set()
        if callable(old):
            old(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield event
    finally:
        for sig, old in previous.items():
            if old is not None:
                signal.signal(sig, old)


def remote_handle(
    client: Any, job: Job, *, address: str, mode: str, workers: int, threads: int, what: str
) -> ClusterHandle:
    """The handle of workers on other nodes (allocation, jobqueue): its description is ``what``
    and the nodes the workers report, its dashboard the link and, for another machine, the
    ssh tunnel to it."""
    nodes = sorted(set(client.run(node_name).values()))
    link = client.dashboard_link if job.cluster.dashboard else None
    tunnel = ssh_tunnel(link) if link else None
    return ClusterHandle(
        client=client,
        mode=mode,
        workers=workers,
        threads=threads,
        dashboard=link,
        description=f"{what} on {','.join(nodes)} ({address})"
        + (f"; dashboard from another machine: {tunnel}" if tunnel else ""),
        address=address,
        tunnel=tunnel,
    )


def ssh_tunnel(link: str) -> str:
    """``ssh -N -L PORT:127.0.0.1:PORT HOST``: the dashboard of this node from a laptop."""
    port = _port_of(link)
    return f"ssh -N -L {port}:127.0.0.1:{port} {socket.gethostname()}"


def _port_of(link: str) -> str:
    from urllib.parse import urlparse

    return str(urlparse(link).port or 8787)


# --------------------------------------------------------------------------- external


def existing_cluster(client: Any) -> ClusterHandle:
    """Wrap a client the caller started (tests, notebooks, a group's own cluster)."""
    nthreads = client.nthreads()
    threads = max(nthreads.values(), default=1)
    return ClusterHandle(
        client=client,
        mode="external",
        workers=len(nthreads),
        threads=threads,
        dashboard=None,
        description=f"existing cluster: {len(nthreads)} workers",
        address=getattr(client.scheduler, "address", "") or "",
    )
