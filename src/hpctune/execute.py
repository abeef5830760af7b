"""Running a job lives in :mod:`hpctune.execution` (prepare, tasks, runner, batches, graphs,
driver); its names stay importable from here until their importers use the new paths."""

from .cluster import choose_granularity, start_cluster
from .execution.batches import GUIDED_FACTOR, TARGET_TASK_SECONDS, BatchRunner, batch_outcome
from .execution.driver import (
    RUNNERS,
    ClusterStart,
    RunSummary,
    decide,
    merge,
    run,
    run_prepared,
)
from .execution.graphs import SearchGraphRunner, _executing_keys
from .execution.prepare import Prepared, check_data, check_search, prepare
from .execution.runner import POLL_SECONDS, Runner
from .execution.tasks import (
    TaskContext,
    partition_rows,
    record_result,
    run_batch,
    shared_context,
    warm_up,
)

__all__ = [
    "GUIDED_FACTOR",
    "POLL_SECONDS",
    "RUNNERS",
    "TARGET_TASK_SECONDS",
    "BatchRunner",
    "ClusterStart",
    "Prepared",
    "RunSummary",
    "Runner",
    "SearchGraphRunner",
    "TaskContext",
    "_executing_keys",
    "batch_outcome",
    "check_data",
    "check_search",
    "choose_granularity",
    "decide",
    "merge",
    "partition_rows",
    "prepare",
    "record_result",
    "run",
    "run_batch",
    "run_prepared",
    "shared_context",
    "start_cluster",
    "warm_up",
]
