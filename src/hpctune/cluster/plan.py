"""The one execution plan: where a run's workers are (:class:`Placement`) and how it computes
(:class:`ExecutionPlan`: threads or processes, granularity, slots), decided once by
:func:`plan_execution` from the spec, the allocation (detected once by the command) and the
partitions left, then only read: by the cluster's start, the runners and the estimate."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from typing import Any

from ..schedulers import registry
from ..schedulers.base import Allocation
from ..spec import HALVING_METHODS, Job
from .handle import available_cores
from .placement import ExecutionPlan, Placement

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

    A successive-halving search is always one task. With many partitions, whole searches per
    task keep every worker busy at the least overhead.
    With few, the last round of searches would leave workers idle: when one task per partition
    would use less than 90% of the slots over the run, the fits of each search become tasks.
    """
    if job.cluster.granularity != "auto":
        return job.cluster.granularity
    if job.search.method in HALVING_METHODS:
        return "partition"  # its iterations depend on each other: the search is one task
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
    search timeout, granularity not ``partition``, a method other than halving, and every
    estimator step in :data:`GIL_RELEASING_STEPS`."""
    spec = job.cluster
    if spec.processes is True or spec.granularity == "partition":
        return False
    if job.search.method in HALVING_METHODS:
        return False  # a halving search is one task on a worker process
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
    workers, threads = local_layout(job)
    placement = Placement("local", workers, threads)
    return not plan_execution(job, placement, n_partitions).processes


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
