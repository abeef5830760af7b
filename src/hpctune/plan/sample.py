"""``hpctune plan``'s sample: a few partitions drawn with the spec's seed, each computed on a
worker as a run would (:func:`time_partition`, nothing kept), then the estimate of the whole run
(:func:`plan`)."""

from __future__ import annotations

import importlib
import time
from typing import Any

import numpy as np

from ..checks import Checked, check_job
from ..cluster import ExecutionPlan, Placement, choose_mode, open_cluster, place, plan_execution
from ..errors import UsageError
from ..execution.tasks import partition_rows
from ..kept import Kept
from ..schedulers import registry
from ..search import n_candidates
from ..search.estimator import build_estimator
from ..search.halving import plan_estimate
from ..search.targets import describe_targets
from ..spec import Job
from .estimate import PlanEstimate, Resources, resources

DEFAULT_SAMPLE = 20
"""Partitions ``hpctune plan`` times unless told (``--sample``)."""


_STATES: Kept[Any] = Kept(limit=1, serial=True)
"""The reader and searcher of the spec being sampled, per worker process."""


def _state(prepared: Checked) -> Any:
    from ..data import CellReader
    from ..search import PartitionSearch

    def build() -> Any:
        test = prepared.job.data.test
        return (
            CellReader(prepared.job.data, prepared.info),
            PartitionSearch(
                prepared.job.search,
                test_start=test.start if test else None,
                window=prepared.job.data.train,
            ),
        )

    return _STATES.get(prepared.job.fingerprint(), build)


def _warm_up_here(prepared: Checked) -> bool:
    """Import what a search imports (dask-ml, skops for the model, the estimator's modules: the
    list hpctune's forkserver preloads) and open the data on a worker, outside the timings."""
    from ..cluster.forkserver import worker_modules

    for module in worker_modules(prepared.job.search.estimator):
        importlib.import_module(module)
    reader, _search = _state(prepared)
    _ = reader.dataset
    return True


def time_partition(prepared: Checked, index: int) -> dict[str, Any]:
    """Compute one partition as a run would, keep nothing, and report what it cost."""
    import resource

    reader, search = _state(prepared)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    members = prepared.plan.cells(index)
    block = reader.read(members)
    x, y, t = partition_rows(block, 0, members, prepared.info.times)
    read_seconds = time.perf_counter() - wall0
    result = search.run(index, x, y, t)
    wall = time.perf_counter() - wall0
    return {
        "index": int(index),
        "status": result.status,
        "reason": result.reason,
        "seconds": wall,
        "cpu_seconds": time.process_time() - cpu0,
        "read_seconds": read_seconds,
        "n_train": result.n_train,
        "model_bytes": len(result.model or b""),
        # Linux reports ru_maxrss in KiB: the worker's peak resident memory so far.
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "worker": _worker_address(),
    }


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def target_plan(job: Job, mode: str, available: Resources, size: int) -> ExecutionPlan:
    """The plan of the run the estimate is for: its workers on ``available``'s slots."""
    workers = available.nodes * available.workers_per_node
    return plan_execution(job, Placement(mode, workers, available.threads), size)


def plan(
    job: Job,
    sample: int = DEFAULT_SAMPLE,
    *,
    target_walltime: int | None = None,
    client: Any = None,
) -> PlanEstimate:
    """Time ``sample`` partitions (drawn with the spec's seed) and estimate the whole run."""
    if sample < 1:
        raise UsageError(f"--sample must be at least 1; got {sample}")
    started = time.monotonic()
    prepared = check_job(job)
    inside = np.flatnonzero(~prepared.plan.outside_mask)
    size = len(inside)  # partitions outside data.where are recorded, not computed
    rng = np.random.default_rng(job.search.seed)
    chosen = sorted(int(i) for i in rng.choice(inside, size=min(sample, size), replace=False))
    allocation = registry.detect_allocation()
    job_mode = choose_mode(job, allocation)  # the run's, with or without a client here
    mode = "external" if client is not None else job_mode
    sampling = plan_execution(
        job,
        place(job, mode, allocation, client=client, max_workers=len(chosen)),
        None,
        need_client=True,
    )
    with open_cluster(job, sampling, client) as handle:
        shared = handle.client.scatter(prepared, broadcast=True, hash=False)
        ready = time.monotonic()
        # One warm-up per worker (imports, open files) so that no timing pays for them. A new
        # cluster's run pays for them once: they count as startup. A given client is warm for
        # the run that follows on it: they do not.
        handle.client.run(_warm_up_here, prepared)
        startup = (ready if client is not None else time.monotonic()) - started
        futures = [
            handle.client.submit(time_partition, shared, index, pure=False) for index in chosen
        ]
        measured = handle.client.gather(futures)
        description = handle.description
    folds = prepared.train_folds()
    per_partition = None if folds is None else n_candidates(job.search) * folds + 1
    halving = plan_estimate(
        job.search, n_candidates(job.search), folds, measured, prepared.train_rows()
    )
    if halving is not None:
        per_partition = halving["fits_per_partition"]
    available = resources(job, job_mode)
    target = target_plan(job, mode, available, size)
    return PlanEstimate(
        name=job.name,
        partitions=size,
        fits_per_partition=per_partition,
        sample=sorted(measured, key=lambda s: s["index"]),
        resources=available,
        startup_seconds=startup,
        measured_on=description,
        target_walltime=target_walltime or job.scheduler.walltime,
        granularity=target.granularity,
        workers="processes" if target.processes else "threads",
        halving=halving,
        targets=describe_targets(job.data, build_estimator(job.search))
        if job.data.multi_target
        else None,
    )
