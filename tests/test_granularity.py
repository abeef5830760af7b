"""Few partitions: each search's fits become tasks, with the same results as whole searches."""

from __future__ import annotations

import pytest
import xarray as xr
from helpers import RUN_SPECIFIC, synthetic, synthetic_spec, write_spec

import hpctune
from hpctune.cluster import choose_granularity
from hpctune.spec import load_spec


@pytest.mark.parametrize(
    ("partitions", "slots", "expected"),
    [
        (1, 2, "fit"),
        (5, 2, "fit"),
        (3, 64, "fit"),
        (80, 2, "partition"),
        (81, 2, "partition"),
        (4000, 2, "partition"),
        (7, 1, "partition"),
        (0, 2, "partition"),
    ],
)
def test_granularity_follows_partitions_and_slots(partitions, slots, expected, synthetic_job):
    job = load_spec(synthetic_job)
    assert choose_granularity(job, partitions, slots) == expected
    forced = load_spec(synthetic_job, ["cluster.granularity=partition"])
    assert choose_granularity(forced, partitions, slots) == "partition"


def test_both_granularities_give_identical_results(tmp_path, dask_client):
    synthetic(cells=3, steps=600).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__estimator=["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
        search__params={"svr__C": [0.1, 1.0, 10.0], "svr__gamma": ["scale", 0.3]},
        search__scoring=["r2", "neg_mean_absolute_error"],
        search__refit="r2",
        data__test={"from": "2010-08-01"},
    )
    path = write_spec(tmp_path, spec)
    runs = {}
    for granularity in ("partition", "fit"):
        summary = hpctune.run(
            path,
            [f"cluster.granularity={granularity}", f"output=out-{granularity}"],
            client=dask_client,
        )
        assert summary.granularity == granularity
        runs[granularity] = summary.results
    assert list(runs["fit"].status.values) == ["ok"] * 3
    compared = [v for v in runs["fit"].data_vars if v not in RUN_SPECIFIC]
    xr.testing.assert_equal(runs["fit"][compared], runs["partition"][compared])


def test_fit_granularity_records_a_failing_search_without_retrying_forever(tmp_path, dask_client):
    synthetic(cells=2, steps=200).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__estimator=["sklearn.neighbors.KNeighborsRegressor"],
        search__params={"n_neighbors": [5, 500]},  # 500 neighbours: more than the rows
        search__cv={"kind": "kfold", "splits": 2},
        cluster__granularity="fit",
    )
    summary = hpctune.run(write_spec(tmp_path, spec), client=dask_client)
    assert list(summary.results.status.values) == ["failed", "failed"]
    assert all("n_neighbors" in reason for reason in summary.results.reason.values)
    assert summary.exit_code == 3
