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
  (:mod:`hpctune.cluster.jobqueue`).
- ``auto``: ``allocation`` inside a job of more than one node or task, else ``local``; on a
  login node (a batch system's commands, no job) on :data:`LOGIN_NODE_CORES` cores, with a
  warning.

Every mode talks TLS with credentials made for the run (:mod:`hpctune.cluster.security`); every HTTP
endpoint (the dashboard) listens on 127.0.0.1 only, reached from elsewhere with ``ssh -L``.
Worker threads talk to nothing: no listener at all.

The package: :mod:`~hpctune.cluster.plan` decides (the one execution plan),
:mod:`~hpctune.cluster.modes` starts (:func:`open_cluster`), one module per mode
(:mod:`~hpctune.cluster.local`, :mod:`~hpctune.cluster.threads`,
:mod:`~hpctune.cluster.allocation`, :mod:`~hpctune.cluster.jobqueue`), and
:mod:`~hpctune.cluster.handle` and :mod:`~hpctune.cluster.waiting` are what they share. The names
below stay importable from ``hpctune.cluster`` until their importers use the modules.
"""

from ..errors import AllocationError, ClusterError, RunStopped
from .allocation import allocation_cluster, scheduler_host
from .handle import (
    DASHBOARD_ADDRESS,
    SERVER_CONFIG,
    WORKER_CONFIG,
    ClusterHandle,
    available_cores,
    distributed_log_level,
    existing_cluster,
    node_name,
    remote_handle,
    scratch_dir,
    ssh_tunnel,
)
from .local import local_cluster, prepare_local_workers
from .modes import MODES, ClusterMode, open_cluster, place, start_cluster
from .placement import ExecutionPlan, Placement
from .plan import (
    GIL_RELEASING_STEPS,
    LOGIN_NODE_CORES,
    capped_on_login_node,
    choose_granularity,
    choose_mode,
    in_process_workers,
    local_cores,
    local_layout,
    login_node,
    login_node_warning,
    plan_execution,
    processes_not_honoured,
    resolve_mode,
    threads_allowed,
    threads_possible,
)
from .threads import WorkerThreads, worker_threads
from .waiting import STOP_SIGNALS, wait_for_workers, watch_stop_signals

__all__ = [
    "DASHBOARD_ADDRESS",
    "GIL_RELEASING_STEPS",
    "LOGIN_NODE_CORES",
    "MODES",
    "SERVER_CONFIG",
    "STOP_SIGNALS",
    "WORKER_CONFIG",
    "AllocationError",
    "ClusterError",
    "ClusterHandle",
    "ClusterMode",
    "ExecutionPlan",
    "Placement",
    "RunStopped",
    "WorkerThreads",
    "allocation_cluster",
    "available_cores",
    "capped_on_login_node",
    "choose_granularity",
    "choose_mode",
    "distributed_log_level",
    "existing_cluster",
    "in_process_workers",
    "local_cluster",
    "local_cores",
    "local_layout",
    "login_node",
    "login_node_warning",
    "node_name",
    "open_cluster",
    "place",
    "plan_execution",
    "prepare_local_workers",
    "processes_not_honoured",
    "remote_handle",
    "resolve_mode",
    "scheduler_host",
    "scratch_dir",
    "ssh_tunnel",
    "start_cluster",
    "threads_allowed",
    "threads_possible",
    "wait_for_workers",
    "watch_stop_signals",
    "worker_threads",
]
