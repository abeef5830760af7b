"""dask-ml's search per partition picks what scikit-learn's GridSearchCV picks, on the real data."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, ROOT
from sklearn import model_selection as ms
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

import hpctune
from hpctune.search import select_rows

GRID = {"svr__C": [0.1, 1, 10], "svr__gamma": ["scale", 0.1]}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, dask_client):
    """The demo spec on the real data, on a subsample of time to keep the test quick."""
    from helpers import REAL_DATA

    folder = tmp_path_factory.mktemp("parity")
    ds = xr.open_dataset(REAL_DATA).isel(time=slice(0, None, 4)).load()
    ds.to_netcdf(folder / "cells.nc")
    overrides = [
        f"data.paths={folder / 'cells.nc'}",
        f"output={folder / 'out'}",
    ]
    summary = hpctune.run(ROOT / "jobs" / "example.yaml", overrides, client=dask_client)
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
