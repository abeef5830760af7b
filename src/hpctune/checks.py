"""The one validation of a job against its data and its estimator, reading metadata only.

``run``, ``validate``, ``plan`` and ``submit`` check a job here before anything is started,
rendered or written. The data are checked first (:func:`check_layout`: dims, variables, the
time axis, the partitions), then the search (:func:`check_search`: the estimator, its
parameters, every candidate, the scorers), which imports scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from .data.inspect import DatasetInfo, check_data, space_coordinates
from .data.partitions import Partitioning, partitioning
from .data.periods import period_masks
from .data.source import open_dataset
from .data.where import where_mask
from .search.cv import n_folds
from .search.estimator import (
    build_estimator,
    check_candidates,
    check_params,
    check_scoring,
    work_counts,
)
from .search.fixed import apply_fixed, check_fixed
from .search.halving import check_resource
from .search.targets import check_targets, describe_targets
from .spec import Job


@dataclass
class Checked:
    """A job whose data and search passed their checks, with the data's metadata, its
    partitions and their coordinates; nothing written yet."""

    job: Job
    info: DatasetInfo
    partitioning: Partitioning
    coords: dict[str, tuple[np.ndarray, dict]]

    @property
    def plan(self) -> Partitioning:
        """The partitions, by their former name."""
        return self.partitioning

    def train_times(self) -> tuple[np.ndarray, int]:
        """The time steps of the training period (inside ``data.train``, before
        ``data.test.from``), and how many the test period holds."""
        train, test = period_masks(self.job.data, self.info.times)
        return self.info.times[train], int(test.sum())

    def train_folds(self) -> int | None:
        """Folds of a search over the whole training period (None: unknown before the rows
        are read, e.g. ``years`` without dates)."""
        train_times, _ = self.train_times()
        return n_folds(self.job.search.cv, train_times if self.info.is_datetime else None)

    def train_rows(self) -> int:
        """Training rows of a mean partition when no value is missing (time steps x cells):
        the rows a halving search's schedule is estimated for."""
        cells = self.partitioning.n_cells / max(1, self.partitioning.size)
        return int(self.train_times()[0].size * cells)

    def describe(self) -> dict[str, Any]:
        """What ``validate`` reports: the data, the partitions and the work of the search."""
        job = self.job
        train_times, n_test_steps = self.train_times()
        parts = self.partitioning
        outside = int(parts.outside_mask.sum())
        targets = None
        if job.data.multi_target:
            targets = describe_targets(
                job.data, apply_fixed(job.search, build_estimator(job.search))
            )
        return {
            "name": job.name,
            "output": job.output,
            "data": self.info.summary(),
            "partitions": {
                "by": job.partition.by,
                "count": self.partitioning.size,
                "outside_where": outside,
                "train_steps": int(train_times.size),
                "test_steps": n_test_steps,
            },
            "search": work_counts(
                job.search, parts.size - outside, self.train_folds(), self.train_rows()
            ),
            **({"targets": targets} if targets else {}),
        }


def check_layout(
    job: Job,
) -> tuple[DatasetInfo, Partitioning, dict[str, tuple[np.ndarray, dict]]]:
    """Check the data (:func:`~hpctune.data.inspect.check_data`) and find its partitions and
    their coordinates: metadata only, no scikit-learn."""
    ds = open_dataset(job.data)
    # Metadata reads stay in this process: never on a default distributed client of the caller.
    with dask.config.set(scheduler="sync"):
        try:
            info = check_data(job, ds)
            inside = where_mask(job.data, ds)
            parts = partitioning(job.partition.by, info.n_cells, ds, info.space_dims, inside)
            coords = {} if parts.grouped else space_coordinates(ds, info.space_dims)
        finally:
            ds.close()
    return info, parts, coords


def check_search(job: Job) -> None:
    """Check the estimator, its searched and fixed parameters, every candidate's values and the
    scorers, before any partition is fitted."""
    estimator = build_estimator(job.search)
    check_params(job.search, estimator)
    check_fixed(job.search, estimator)
    check_candidates(job.search, estimator)
    check_resource(job.search, estimator)
    check_scoring(job.search)
    check_targets(job.data, job.search, estimator)


def check_partitions(job: Job) -> Checked:
    """The first half of :func:`check_job`: the data checked and the partitions known, the
    search not yet checked. A run decides its execution plan here and starts its local cluster
    while :func:`check_search` imports scikit-learn (hpctune.execution.driver)."""
    info, parts, coords = check_layout(job)
    return Checked(job=job, info=info, partitioning=parts, coords=coords)


def check_job(job: Job) -> Checked:
    """Check the spec against the data and the estimator, reading metadata only."""
    checked = check_partitions(job)
    check_search(job)
    return checked


def partition_count(job: Job) -> int:
    """How many partitions ``job`` has, from the data's metadata alone."""
    return check_layout(job)[1].size
