"""``cluster.mode: jobqueue``: Dask workers in batch jobs that dask-jobqueue submits.

The scheduler runs in this process; each worker job (the batch system's class of dask-jobqueue,
:attr:`hpctune.schedulers.base.Scheduler.jobqueue`: ``SLURMCluster``, ``PBSCluster`` ...) asks for
one node's worth of the spec's scheduler resources and runs ``cluster.workers`` worker processes
of ``cluster.threads`` threads. ``cluster.jobs`` jobs are kept running (or between
``cluster.adaptive`` bounds); a worker leaves before its job's walltime (``--lifetime``, with a
stagger so that they do not all leave at once) and the cluster submits a job to replace it.

Only what the spec sets is passed to dask-jobqueue, so the user's own ``jobqueue.yaml``
(``~/.config/dask/jobqueue.yaml``) decides the rest; lists (``job-extra-directives``,
``job-script-prologue``, ``worker-extra-args``) are extended, not replaced. Two things are not
left to that file: TLS with this run's credentials, and a dashboard on localhost only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shlex
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ClusterError
from ..schedulers.base import Allocation
from ..schedulers.launch import THREAD_LIMITS
from ..schedulers.registry import get_scheduler
from ..spec import Job
from ..units import parse_walltime
from .handle import DASHBOARD_ADDRESS, SERVER_CONFIG, ClusterHandle, remote_handle
from .placement import ExecutionPlan, Placement
from .waiting import wait_for_workers, watch_stop_signals

log = logging.getLogger("hpctune")

SHIPPED_JOB_NAME = "dask-worker"
"""dask-jobqueue's own default job name: hpctune names worker jobs after the run instead."""


def import_dask_jobqueue() -> Any:
    """Import dask_jobqueue without letting it take over Ctrl-C.

    dask-jobqueue 0.9.0 replaces the SIGINT handler when it is imported (``runner.py``:
    ``signal.signal(SIGINT, lambda *_: sys.exit())``, dask/dask-jobqueue#696), which turns
    Ctrl-C into a silent exit with status 0 instead of hpctune's orderly stop. The handler in
    place before the import is put back.
    """
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main else None
    try:
        import dask_jobqueue
    finally:
        if previous is not None and signal.getsignal(signal.SIGINT) is not previous:
            signal.signal(signal.SIGINT, previous)
    return dask_jobqueue


def parse_walltime_text(text: Any) -> int | None:
    """Seconds of a walltime from a dask-jobqueue config value, None if unreadable."""
    try:
        return parse_walltime(text)
    except (TypeError, ValueError):
        return None


def lifetime(walltime: int, grace: int) -> tuple[int, int]:
    """``(lifetime, stagger)`` seconds for ``dask worker --lifetime``.

    A worker leaves at ``lifetime ± stagger``; the last ones leave ``margin`` seconds before the
    walltime, with ``margin = min(scheduler.grace, walltime / 5)`` and ``stagger = min(5 min,
    walltime / 20)``, so that a worker finishes its task and hands over before the batch system
    kills its job.
    """
    stagger = int(min(300, walltime / 20))
    margin = int(min(grace, walltime / 5))
    return max(1, walltime - margin - stagger), stagger


@dataclass
class JobqueuePlan:
    """What to build: the dask-jobqueue class and its arguments, and the scale."""

    cluster_class: str
    kwargs: dict[str, Any]
    processes: int
    threads: int
    jobs: int
    minimum_jobs: int
    maximum_jobs: int
    notes: list[str] = field(default_factory=list)
    section: str = "slurm"
    """The batch system's word in messages (its jobqueue.yaml section)."""
    queue_command: str = "squeue"
    """The command that shows the worker jobs waiting."""

    @property
    def expected_workers(self) -> int:
        return self.maximum_jobs * self.processes


def plan(job: Job, security: Any, *, config: Any = None) -> JobqueuePlan:
    """dask-jobqueue arguments from the spec, leaving to ``jobqueue.yaml`` what it does not set.

    ``config`` is :mod:`dask.config` (a stand-in in tests).
    """
    if config is None:
        import dask

        import_dask_jobqueue()  # its defaults join the config (and jobqueue.yaml) on import
        config = dask.config
    sched, spec = job.scheduler, job.cluster
    flavour = get_scheduler(sched.kind).jobqueue
    if flavour is None:
        raise ClusterError(f"cluster.mode jobqueue: dask-jobqueue has no class for {sched.kind}")
    section = flavour.section

    def conf(key: str, default: Any = None) -> Any:
        return config.get(f"jobqueue.{section}.{key}", default)

    given = sched.model_fields_set
    cores = sched.cores_per_node if "cores_per_node" in given else conf("cores")
    cores = int(cores) if cores else sched.cores_per_node
    memory = sched.memory if sched.memory is not None else conf("memory")
    if memory is None:
        raise ClusterError(
            f"cluster.mode jobqueue needs the memory of each worker job: set scheduler.memory "
            f"(e.g. 16GB), or jobqueue.{section}.memory in ~/.config/dask/jobqueue.yaml"
        )
    threads = spec.threads
    if spec.workers:
        processes = spec.workers
    elif "threads" not in spec.model_fields_set and conf("processes"):
        processes = int(conf("processes"))
    else:
        processes = max(1, cores // threads)
    if processes * threads > cores:
        raise ClusterError(
            f"cluster.workers x cluster.threads = {processes} x {threads} is more than the "
            f"{cores} cores of a worker job (scheduler.cores_per_node)"
        )
    notes = []
    if cores // processes != threads:
        notes.append(
            f"each worker gets {cores // processes} threads: dask-jobqueue shares the "
            f"{cores} cores of a job among its {processes} workers"
        )
    threads = max(1, cores // processes)

    kwargs: dict[str, Any] = {
        "cores": cores,
        "memory": int(memory) if isinstance(memory, int) else memory,
        "processes": processes,
        "security": security,
        "protocol": "tls://",
        "scheduler_options": {
            **(conf("scheduler-options") or {}),
            "dashboard_address": DASHBOARD_ADDRESS,
        },
    }
    if spec.interface:
        kwargs["interface"] = spec.interface
    if "walltime" in given:
        kwargs["walltime"] = flavour.walltime(sched.walltime)
    walltime = sched.walltime if "walltime" in given else parse_walltime_text(conf("walltime"))
    if sched.queue:
        kwargs["queue"] = sched.queue
    if sched.account:
        kwargs[flavour.account_argument] = sched.account
    if conf("name") in (None, SHIPPED_JOB_NAME):
        kwargs["job_name"] = f"{job.name}-worker"
    if sched.extra:
        kwargs["job_extra_directives"] = [*(conf("job-extra-directives") or []), *sched.extra]
    prologue = [f"export {k}={shlex.quote(v)}" for k, v in sched.env.items()]
    prologue += [f"export {name}=1" for name in THREAD_LIMITS]
    kwargs["job_script_prologue"] = [
        *(conf("job-script-prologue") or []),
        *sched.setup,
        *prologue,
    ]
    extra_args = list(conf("worker-extra-args") or [])
    if conf("worker-command") in (None, "distributed.cli.dask_worker"):
        # dask worker with hpctune's settings; dask-jobqueue adds these two to its own only
        kwargs["worker_command"] = "hpctune.worker"
        extra_args += ["--nanny"] + (["--nworkers", str(processes)] if processes > 1 else [])
    extra_args += ["--no-dashboard", "--dashboard-address", DASHBOARD_ADDRESS]
    if walltime:
        life, stagger = lifetime(walltime, sched.grace)
        extra_args += ["--lifetime", f"{life}s", "--lifetime-stagger", f"{stagger}s"]
        notes.append(f"workers leave after {life} s ± {stagger} s and are replaced")
    kwargs["worker_extra_args"] = extra_args
    if conf("local-directory") is None:
        kwargs["local_directory"] = f'"{flavour.scratch}"'
    if conf("log-directory") is None:
        kwargs["log_directory"] = str(job.log_dir / "workers")
    kwargs.update(flavour.extra(cores, memory, conf))
    if sched.nodes > 1:
        notes.append(
            f"scheduler.nodes={sched.nodes} is ignored: each worker job is one node; "
            "cluster.jobs sets how many"
        )

    if spec.adaptive is not None:
        low, high = spec.adaptive.minimum, spec.adaptive.maximum
    else:
        low = high = spec.jobs
    return JobqueuePlan(
        cluster_class=flavour.cluster_class,
        kwargs=kwargs,
        processes=processes,
        threads=threads,
        jobs=high,
        minimum_jobs=low,
        maximum_jobs=high,
        notes=notes,
        section=section,
        queue_command=flavour.queue_command,
    )


def build(plan_: JobqueuePlan) -> Any:
    """The dask-jobqueue cluster of ``plan_`` (its scheduler starts; no job is submitted)."""
    module = import_dask_jobqueue()
    import dask

    cls = getattr(module, plan_.cluster_class)
    try:
        with dask.config.set(SERVER_CONFIG):  # the scheduler's; the workers' in their jobs
            return cls(**plan_.kwargs)
    except ValueError as exc:
        raise ClusterError(f"dask-jobqueue refused the worker job settings: {exc}") from None


@contextlib.contextmanager
def jobqueue_cluster(job: Job, settings: JobqueuePlan | None = None) -> Iterator[ClusterHandle]:
    """Start the worker jobs of ``settings`` (the plan's placement's, with the run's credentials
    added; :func:`plan` of ``job`` without), wait for the first workers, and stop them after."""
    from distributed import Client

    from .security import write_credentials

    credentials = write_credentials(job.output_dir)
    cluster = client = None
    try:
        if settings is None:
            settings = plan(job, None)
        kwargs = {**settings.kwargs, "security": credentials.security()}
        plan_ = dataclasses.replace(settings, kwargs=kwargs)
        for note in plan_.notes:
            log.info(note)
        (job.log_dir / "workers").mkdir(parents=True, exist_ok=True)
        # a stop while the scheduler starts and the first jobs are submitted is heard as well
        with watch_stop_signals() as stopping:
            cluster = build(plan_)
            address = cluster.scheduler_address
            credentials.write_scheduler_file(address)
            log.info("worker job script:\n%s", cluster.job_script())
            # adapt, also for a fixed number of jobs: it replaces jobs whose workers left. At
            # least one job from the start, so that a job that never runs is noticed (timeout).
            first = max(1, plan_.minimum_jobs)
            cluster.adapt(minimum_jobs=first, maximum_jobs=plan_.maximum_jobs)
            client = Client(cluster, security=credentials.security())
            wanted = first * plan_.processes
            connected = wait_for_workers(
                client,
                wanted,
                job.cluster.start_timeout,
                what="workers of the worker jobs",
                hint=(
                    "; the worker jobs may still be waiting in the queue "
                    f"(see {plan_.queue_command}): "
                    "raise cluster.start_timeout, or check their logs in "
                    f"{job.log_dir / 'workers'}"
                ),
                stopping=stopping,
            )
        if plan_.minimum_jobs != first:
            cluster.adapt(minimum_jobs=plan_.minimum_jobs, maximum_jobs=plan_.maximum_jobs)
        kind = plan_.section
        scale = (
            f"{plan_.jobs} {kind} jobs"
            if plan_.minimum_jobs == plan_.maximum_jobs
            else f"{plan_.minimum_jobs}-{plan_.maximum_jobs} {kind} jobs (adaptive)"
        )
        yield remote_handle(
            client,
            job,
            address=address,
            mode="jobqueue",
            workers=max(connected, plan_.expected_workers),
            threads=plan_.threads,
            what=(
                f"jobqueue: {scale} x {plan_.processes} workers x {plan_.threads} thread(s); "
                f"{connected} connected"
            ),
        )
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        credentials.remove()


def place(job: Job, allocation: Allocation | None, max_workers: int | None) -> Placement:
    """The worker jobs of dask-jobqueue, as :func:`plan` sets them (``max_workers`` does not
    apply: the spec says how many jobs)."""
    settings = plan(job, None)
    return Placement(
        "jobqueue",
        settings.expected_workers,
        settings.threads,
        allocation=allocation,
        jobqueue=settings,
    )


def start(job: Job, execution: ExecutionPlan) -> contextlib.AbstractContextManager[ClusterHandle]:
    """Start the worker jobs of ``execution``'s placement (:func:`jobqueue_cluster`)."""
    return jobqueue_cluster(job, execution.placement.jobqueue)
