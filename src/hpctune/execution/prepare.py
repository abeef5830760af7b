"""Check a job against its data and its estimator, reading metadata only."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from ..data import DatasetInfo, inspect, open_dataset, space_coordinates
from ..partitions import PartitionPlan, make_plan
from ..search import (
    build_estimator,
    check_candidates,
    check_params,
    check_scoring,
    n_folds,
    work_counts,
)
from ..spec import Job

log = logging.getLogger("hpctune")


@dataclass
class Prepared:
    """A validated job with its data's metadata and partition plan; nothing written yet."""

    job: Job
    info: DatasetInfo
    plan: PartitionPlan
    coords: dict[str, tuple[np.ndarray, dict]]

    def describe(self) -> dict[str, Any]:
        job = self.job
        times = self.info.times
        if job.data.test is not None and self.info.is_datetime:
            start = np.datetime64(job.data.test.start, "ns")
            train_times, n_test_steps = times[times < start], int((times >= start).sum())
        else:
            train_times, n_test_steps = times, 0
        folds = n_folds(job.search.cv, train_times if self.info.is_datetime else None)
        return {
            "name": job.name,
            "output": job.output,
            "data": self.info.summary(),
            "partitions": {
                "by": job.partition.by,
                "count": self.plan.size,
                "train_steps": int(train_times.size),
                "test_steps": n_test_steps,
            },
            "search": work_counts(job.search, self.plan.size, folds),
        }


def check_data(job: Job) -> Prepared:
    """Check the spec against the data, reading metadata only: the partitions are known after
    it, and the run's plan can be decided (:func:`run`)."""
    ds = open_dataset(job.data)
    # Metadata reads stay in this process: never on a default distributed client of the caller.
    with dask.config.set(scheduler="sync"):
        try:
            info = inspect(job, ds)
            plan = make_plan(job.partition.by, info.n_cells, ds, info.space_dims)
            coords = {} if plan.grouped else space_coordinates(ds, info.space_dims)
        finally:
            ds.close()
    return Prepared(job=job, info=info, plan=plan, coords=coords)


def check_search(prepared: Prepared) -> Prepared:
    """Check the estimator, its parameters and scoring (imports scikit-learn: 1.5 s); returns
    ``prepared``, now checked through."""
    search = prepared.job.search
    estimator = build_estimator(search)
    check_params(search, estimator)
    check_candidates(search, estimator)
    check_scoring(search)
    return prepared


def prepare(job: Job) -> Prepared:
    """Check the spec against the data and the estimator, reading metadata only."""
    return check_search(check_data(job))
