"""How the run sizes its tasks (hpctune.execution.batches): one partition a task until the cost
of a partition is known, then about TARGET_TASK_SECONDS of work a task, a guided share of what
is left at most."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import synthetic, synthetic_spec, write_spec

import hpctune
from hpctune.execution.batches import (
    GUIDED_FACTOR,
    MIN_TASK_SECONDS,
    TARGET_TASK_SECONDS,
    WALL_PER_WORK,
    BatchRunner,
)
from hpctune.progress import Counts


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


def finish(run, size, seconds, first, cpu=None):
    """A task of ``size`` partitions taken from the pending ones, finished in ``seconds`` of
    wall time and ``cpu`` seconds of its thread's CPU (None: its searches ran elsewhere)."""
    batch = [run.pending.popleft() for _ in range(size)]
    outcome = {"statuses": [(i, "ok") for i in batch], "seconds": seconds, "first": first}
    run._count(batch, {**outcome, "cpu_seconds": cpu})


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
    n = len(run.pending) - 30
    finish(run, n, 0.1 * n, first=False)  # 0.1 s a partition: MIN_TASK_SECONDS is 2 of them
    assert run.batch_size() == -(-30 // (GUIDED_FACTOR * 2))


def test_the_last_tasks_hold_at_least_min_task_seconds_of_work():
    # 1 ms a partition: the guided share of the last 300 would be 50, then 42, 35, ... down to
    # tasks of one partition, each costing the driver more than its work
    run = runner(slots=2, partitions=2_000)
    for first in (True, True, False):
        finish(run, 1, 0.001, first=first)
    finish(run, len(run.pending) - 300, 0.001 * (len(run.pending) - 300), first=False)
    assert run.batch_size() == int(MIN_TASK_SECONDS / 0.001)


def test_tasks_hold_the_target_of_cpu_work_when_other_processes_share_the_cores():
    # 16 workers on 2 cores: each task's wall time is 8 times its CPU time. Sized on wall
    # time, the batches would be 8 times smaller, and the scheduler's cost per partition 8
    # times larger, for the same work.
    run = runner(slots=16, partitions=100_000)
    for _ in range(16):
        finish(run, 1, 0.4, first=True, cpu=0.05)
    for _ in range(16):
        finish(run, 1, 0.04, first=False, cpu=0.005)
    assert run.batch_size() == int(TARGET_TASK_SECONDS / 0.005)


def test_a_task_whose_wall_time_its_cpu_does_not_explain_stays_within_the_wall_bound():
    # waiting on a file system: 0.1 ms of CPU, 50 ms of wall time a partition
    run = runner(slots=2, partitions=100_000, chunk=100_000)
    for first in (True, True, False):
        finish(run, 1, 0.05, first=first, cpu=0.0001)
    assert run.batch_size() == int(WALL_PER_WORK * TARGET_TASK_SECONDS / 0.05)


def test_searches_in_a_child_process_are_sized_on_wall_time():
    # search.timeout: the task's thread waits on its child; its CPU says nothing of the work
    run = runner(slots=2, partitions=10_000)
    for first in (True, True, False):
        finish(run, 1, 0.05, first=first, cpu=None)
    assert run.batch_size() == int(TARGET_TASK_SECONDS / 0.05)


@pytest.mark.parametrize("timeout", [None, 60])
def test_tasks_report_their_threads_cpu_unless_a_child_process_runs_the_searches(
    tmp_path, monkeypatch, timeout
):
    outcomes = []
    count = BatchRunner._count

    def recording(self, batch, outcome):
        outcomes.append(outcome)
        return count(self, batch, outcome)

    monkeypatch.setattr(BatchRunner, "_count", recording)
    synthetic(cells=6, steps=120).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", search__timeout=timeout)
    summary = hpctune.run(write_spec(tmp_path, spec))
    assert summary.exit_code == 0 and len(outcomes) >= 2
    for outcome in outcomes:
        if timeout:
            assert outcome["cpu_seconds"] is None
        else:
            # the searches' CPU, no more than the task's wall time on one thread
            assert 0 < outcome["cpu_seconds"] <= outcome["seconds"] + 0.01
