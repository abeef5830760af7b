"""dask-ml's search per partition picks what scikit-learn's GridSearchCV picks, on the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, ROOT
from sklearn import model_selection as ms
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

import hpctune
from hpctune.search.partition import select_rows

GRID = {"svr__C": [0.1, 1, 10], "svr__gamma": ["scale", 0.1]}


#: The regimes of a run, as (granularity, workers): each partition's whole search as one task,
#: or each fit as a task, on a cluster of worker processes (the distributed scheduler) or on
#: worker threads of this process (dask's local scheduler).
REGIMES = {
    "whole searches": ("partition", "processes"),
    "fits on worker processes": ("fit", "processes"),
    "fits on worker threads": ("fit", "threads"),
}

#: The regime in the fast tier: the demo's own layout; the others are in the full tier.
FAST_REGIME = "fits on worker threads"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(name, marks=() if name == FAST_REGIME else pytest.mark.full)
        for name in REGIMES
    ],
)
def demo_run(request, tmp_path_factory):
    """The demo spec on the real data, on a subsample of time to keep the test quick."""
    from helpers import REAL_DATA

    folder = tmp_path_factory.mktemp("parity")
    ds = xr.open_dataset(REAL_DATA).isel(time=slice(0, None, 4)).load()
    ds.to_netcdf(folder / "cells.nc")
    granularity, workers = REGIMES[request.param]
    overrides = [
        f"data.paths={folder / 'cells.nc'}",
        f"output={folder / 'out'}",
        f"cluster.granularity={granularity}",
        "cluster.workers=2",
    ]
    threads = workers == "threads"  # the run starts its own: the demo's estimator allows them
    client = None if threads else request.getfixturevalue("dask_client")
    summary = hpctune.run(ROOT / "jobs" / "example.yaml", overrides, client=client)
    assert summary.granularity == granularity
    assert ("worker threads in this process" in summary.cluster) is threads, summary.cluster
    return ds, summary


def sklearn_search(x, y):
    search = ms.GridSearchCV(
        make_pipeline(StandardScaler(), SVR()),
        GRID,
        cv=ms.KFold(n_splits=3),
        scoring=["r2", "neg_mean_squared_error"],
        refit="r2",
        error_score="raise",
    )
    return search.fit(x, y)


def test_best_params_score_and_rows_equal_scikit_learn(demo_run):
    ds, summary = demo_run
    results = summary.results
    assert list(results.status.values) == ["ok"] * 5
    start = np.datetime64("2016-01-01")
    surface = xr.open_dataset(Path(summary.output) / "cv_results.nc").load()
    assert list(surface.param_svr__gamma.values) == ["scale", "0.1"] * 3
    for cell in range(ds.sizes["space"]):
        x = np.stack([ds[v].isel(space=cell).values for v in INPUTS], axis=-1)
        y = ds["sig"].isel(space=cell).values
        rows = select_rows(x, y, ds.time.values, start)
        reference = sklearn_search(rows.x_train, rows.y_train)
        row = results.isel(space=cell)
        assert int(row.n_train) == len(rows.y_train)
        assert int(row.n_test) == len(rows.y_test)
        assert float(row.best_svr__C) == reference.best_params_["svr__C"]
        assert str(row.best_svr__gamma.values) == str(reference.best_params_["svr__gamma"])
        assert float(row.best_score) == pytest.approx(reference.best_score_, rel=1e-9, abs=1e-12)
        best = reference.best_index_
        mse = reference.cv_results_["mean_test_neg_mean_squared_error"][best]
        assert float(row.cv_neg_mean_squared_error) == pytest.approx(mse, rel=1e-9)
        predicted = reference.best_estimator_.predict(rows.x_test)
        r2 = (
            1
            - ((rows.y_test - predicted) ** 2).sum()
            / ((rows.y_test - rows.y_test.mean()) ** 2).sum()
        )
        assert float(row.test_r2) == pytest.approx(r2, rel=1e-9)
        # cv_results.nc: every candidate's scores, in scikit-learn's candidate order.
        for name in ("mean_test_r2", "std_test_r2", "mean_test_neg_mean_squared_error"):
            np.testing.assert_allclose(
                surface[name].values[cell], reference.cv_results_[name], rtol=2e-6
            )


def test_results_carry_the_space_coordinates(demo_run):
    ds, summary = demo_run
    results = summary.results
    np.testing.assert_array_equal(results.latitude.values, ds.latitude.values)
    np.testing.assert_array_equal(results.longitude.values, ds.longitude.values)
    for name in (
        "status",
        "reason",
        "best_score",
        "n_train",
        "n_test",
        "best_svr__C",
        "best_svr__gamma",
        "test_r2",
        "test_rmse",
        "test_mae",
        "test_pearson",
        "fit_seconds",
        "node",
    ):
        assert name in results, name
    assert (results.fit_seconds > 0).all()


@pytest.mark.parametrize(
    "y_true, y_pred",
    [
        (np.random.default_rng(1).normal(size=50), np.random.default_rng(2).normal(size=50)),
        (np.arange(10.0), np.arange(10.0) * 0.9 + 0.3),
        (np.full(6, 2.5), np.full(6, 2.5)),  # constant truth, perfect prediction: r2 1
        (np.full(6, 2.5), np.linspace(2, 3, 6)),  # constant truth, imperfect: r2 0
        (np.arange(6.0), np.full(6, 1.0)),  # constant prediction: no Pearson's r
        (np.array([3.0]), np.array([2.0])),  # one row: no r2
    ],
)
def test_holdout_scores_are_scikit_learns(y_true, y_pred):
    import warnings

    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from hpctune.search.partition import holdout_scores

    got = holdout_scores(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = r2_score(y_true, y_pred) if y_true.size > 1 else np.nan
    assert got["r2"] == pytest.approx(r2, rel=1e-12, abs=1e-12, nan_ok=True)
    assert got["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y_true, y_pred)), rel=1e-12)
    assert got["mae"] == pytest.approx(mean_absolute_error(y_true, y_pred), rel=1e-12)
    if y_true.size > 1 and np.std(y_true) > 0 and np.std(y_pred) > 0:
        assert got["pearson"] == pytest.approx(np.corrcoef(y_true, y_pred)[0, 1], rel=1e-12)
    else:
        assert np.isnan(got["pearson"])


def test_holdout_scores_refuse_predictions_that_are_not_finite():
    from hpctune.search.partition import holdout_scores

    with pytest.raises(ValueError, match="not all finite"):
        holdout_scores(np.arange(4.0), np.array([1.0, np.nan, 2.0, 3.0]))
