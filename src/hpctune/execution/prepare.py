"""The checks a run makes, in the two halves its driver needs: the data first (the execution
plan is decided from the partitions), then the search while the local cluster starts. The
checks themselves are :mod:`hpctune.checks`, shared with validate, plan and submit."""

from __future__ import annotations

from typing import Any

from ..checks import Checked, check_job, check_partitions
from ..checks import check_search as check_estimator
from ..output.grid import grid_sizes
from ..search.estimator import build_estimator
from ..search.metrics import test_metric_names
from ..search.surface import surface_candidates
from ..search.targets import describe_targets

Prepared = Checked
"""A job checked against its data (and, after :func:`check_search`, its estimator)."""

check_data = check_partitions
prepare = check_job


def check_search(prepared: Checked) -> Checked:
    """Check ``prepared``'s estimator, parameters, candidates and scorers; returns it."""
    check_estimator(prepared.job)
    return prepared


def results_options(prepared: Checked) -> dict[str, Any]:
    """The keyword arguments of ``Store.write_results`` that the search and the data decide: the
    test metrics of results.nc, the candidates of cv_results.nc (None: no cv_results.nc) and the
    grid a stacked ``data.space`` lays results.nc out on."""
    search = prepared.job.search
    data = prepared.job.data
    targets = describe_targets(data, build_estimator(search)) if data.multi_target else None
    return {
        "test_metrics": test_metric_names(search),
        "candidates": surface_candidates(search),
        "space_sizes": grid_sizes(prepared.info),
        "multi_output": targets["model"] if targets else None,
    }
