"""How the run sizes its tasks (hpctune.execution.batches): one partition a task until the cost
of a partition is known, then about TARGET_TASK_SECONDS of work a task, a guided share of what
is left at most."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np

from hpctune.execution.batches import GUIDED_FACTOR, TARGET_TASK_SECONDS, BatchRunner
from hpctune.progress import Counts


class Finished:
    """A batch's future the scheduler reports finished, with its outcome."""

    status = "finished"

    def __init__(self, outcome):
        self.outcome = outcome

    def result(self, timeout=None):
        return self.outcome


def runner(slots, partitions, chunk=500):
    plan = SimpleNamespace(n_cells_of=lambda index: 1)
    ctx = SimpleNamespace(plan=plan, job=SimpleNamespace(data=SimpleNamespace(chunk=chunk)))
    return BatchRunner(
        handle=SimpleNamespace(client=None),
        ctx=ctx,
        todo=np.arange(partitions),
        counts=Counts(total=partitions),
        progress=None,
        stop=threading.Event(),
        execution=SimpleNamespace(slots=slots),
    )


def finish(run, size, seconds, first):
    """A task of ``size`` partitions taken from the pending ones, finished in ``seconds``."""
    batch = [run.pending.popleft() for _ in range(size)]
    future = Finished({"statuses": [(i, "ok") for i in batch], "seconds": seconds, "first": first})
    run.in_flight[future] = batch
    run._collect(future)


def test_one_partition_a_task_until_each_slot_timed_one():
    run = runner(slots=4, partitions=10_000)
    for _ in range(3):
        assert run.batch_size() == 1
        finish(run, 1, 0.01, first=True)
    assert run.batch_size() == 1
    finish(run, 1, 0.01, first=True)
    assert run.batch_size() > 1


def test_the_first_task_of_each_worker_thread_does_not_set_the_cost_of_a_partition():
    # A worker thread's first task opens the data and makes its searcher (0.5 s here); the
    # next ones take 5 ms a partition: batches aim at TARGET_TASK_SECONDS of the latter.
    run = runner(slots=4, partitions=10_000)
    for _ in range(4):
        finish(run, 1, 0.5, first=True)
    assert run.batch_size() == int(TARGET_TASK_SECONDS / 0.5)  # nothing else known yet
    for _ in range(4):
        finish(run, 1, 0.005, first=False)
    assert run.batch_size() == int(TARGET_TASK_SECONDS / 0.005)
    finish(run, 100, 0.4, first=False)  # 4 ms a partition now
    assert run.batch_size() == int(TARGET_TASK_SECONDS / (0.42 / 104))


def test_batches_shrink_to_a_guided_share_near_the_end_and_stay_within_data_chunk():
    run = runner(slots=2, partitions=2_000, chunk=150)
    for first in (True, True, False):
        finish(run, 1, 0.001, first=first)
    assert run.batch_size() == 150  # data.chunk: the most cells a task reads
    finish(run, len(run.pending) - 30, 1.0, first=False)
    assert run.batch_size() == -(-30 // (GUIDED_FACTOR * 2))
