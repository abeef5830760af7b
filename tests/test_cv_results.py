"""cv_results.nc: every candidate's cross-validated scores per partition, beside results.nc,
equal to scikit-learn's ``cv_results_``, kept across a resume and a merge, and drawn by the
report."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec
from sklearn import model_selection as ms
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import hpctune as api
from hpctune.search.partition import make_search, select_rows
from hpctune.search.surface import surface_candidates
from hpctune.spec import SearchSpec

GRID = {"ridge__alpha": [0.01, 1.0, 100.0], "ridge__fit_intercept": [True, False]}
SCORING = ["r2", "neg_mean_absolute_error"]


@pytest.fixture(scope="module")
def coast(tmp_path_factory, dask_client):
    """Six synthetic cells, one all-NaN (skipped), a two-parameter grid and two scorers."""
    folder = tmp_path_factory.mktemp("cv")
    sea = np.zeros(6, dtype=bool)
    sea[2] = True
    ds = synthetic(cells=6, steps=300, sea=sea)
    ds.to_netcdf(folder / "cells.nc")
    spec = synthetic_spec(
        folder / "cells.nc", search__params=GRID, search__scoring=SCORING, search__refit="r2"
    )
    job = write_spec(folder, spec)
    summary = api.run(job, client=dask_client)
    return ds, job, summary.results, api.load_spec(job).output_dir


def test_every_candidate_of_every_ok_partition_is_kept(coast):
    _ds, _job, results, out = coast
    surface = xr.open_dataset(out / "cv_results.nc").load()
    assert dict(surface.sizes) == {"space": 6, "candidate": 6}
    names = {f"{s}_test_{m}" for m in SCORING for s in ("mean", "std")} | {"mean_fit_time"}
    assert set(surface.data_vars) == names
    assert all(surface[n].dtype == np.float32 for n in names)
    assert list(surface.param_ridge__alpha.values) == [0.01, 0.01, 1.0, 1.0, 100.0, 100.0]
    assert list(surface.param_ridge__fit_intercept.values) == ["True", "False"] * 3
    assert np.array_equal(surface.latitude.values, results.latitude.values)
    ok = results.status.values == "ok"
    assert list(results.status.values) == ["ok", "ok", "skipped", "ok", "ok", "ok"]
    for name in names:
        values = surface[name].values
        assert np.isfinite(values[ok]).all(), name
        assert np.isnan(values[~ok]).all(), name
    # The best candidate's mean is results.nc's cv score, and it holds the best parameters.
    means = surface.mean_test_r2.values[ok]
    best = means.argmax(axis=1)
    np.testing.assert_allclose(means.max(axis=1), results.cv_r2.values[ok], rtol=1e-6)
    alphas = surface.param_ridge__alpha.values[best]
    np.testing.assert_array_equal(alphas, results.best_ridge__alpha.values[ok])


def test_means_equal_scikit_learn_cv_results(coast):
    ds, _job, _results, out = coast
    surface = xr.open_dataset(out / "cv_results.nc").load()
    cell = 4
    x = np.stack([ds[v].isel(space=cell).values for v in ["x1", "x2", "x3"]], -1)
    rows = select_rows(x, ds.y.isel(space=cell).values, ds.time.values, None)
    reference = ms.GridSearchCV(
        make_pipeline(StandardScaler(), Ridge()),
        GRID,
        cv=ms.KFold(n_splits=3),
        scoring=SCORING,
        refit="r2",
    ).fit(rows.x_train, rows.y_train)
    for scorer in SCORING:
        for stat in ("mean", "std"):
            name = f"{stat}_test_{scorer}"
            np.testing.assert_allclose(
                surface[name].values[cell], reference.cv_results_[name], rtol=2e-6, atol=1e-7
            )
    assert [dict(p) for p in reference.cv_results_["params"]] == [
        {"ridge__alpha": a, "ridge__fit_intercept": i == "True"}
        for a, i in zip(
            surface.param_ridge__alpha.values,
            surface.param_ridge__fit_intercept.values,
            strict=True,
        )
    ]


def test_a_resumed_run_and_a_merge_keep_the_scores(coast, dask_client):
    _ds, job, _results, out = coast
    before = xr.open_dataset(out / "cv_results.nc").load()
    (out / "cv_results.nc").unlink()
    summary = api.run(job, client=dask_client)  # every partition resumed from its record
    assert summary.resumed == 6
    after = xr.open_dataset(out / "cv_results.nc").load()
    xr.testing.assert_identical(before.drop_attrs(), after.drop_attrs())
    (out / "cv_results.nc").unlink()
    api.merge(job)
    merged = xr.open_dataset(out / "cv_results.nc").load()
    xr.testing.assert_identical(before.drop_attrs(), merged.drop_attrs())


def test_the_report_draws_the_surface_only_when_it_exists(coast, tmp_path):
    _ds, job, _results, out = coast
    report = api.report(job, folder=tmp_path / "with")
    assert "score_surface.png" in {f.name for f in report.figures}
    assert (report.folder / "score_surface.png").stat().st_size > 5000
    assert "score_surface.png" in report.index.read_text()
    moved = out / "cv_results.moved"
    (out / "cv_results.nc").rename(moved)
    try:
        report = api.report(job, folder=tmp_path / "without")
        assert "score_surface.png" not in {f.name for f in report.figures}
    finally:
        moved.rename(out / "cv_results.nc")


@pytest.mark.parametrize(
    "changes",
    [
        {"method": "grid", "params": GRID},
        {
            "method": "random",
            "n_iter": 5,
            "seed": 7,
            "params": {
                "ridge__alpha": {"loguniform": [0.001, 100.0]},
                "ridge__fit_intercept": [True, False],
            },
        },
    ],
)
def test_the_candidates_are_those_of_each_partitions_search(changes):
    """A grid and a seeded random search try surface_candidates in cv_results_ order."""
    base = synthetic_spec("cells.nc")["search"]
    search = SearchSpec.model_validate({**base, **changes})
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    for _ in range(2):  # two partitions: the same candidates
        searcher = make_search(search, make_pipeline(StandardScaler(), Ridge()), ms.KFold(3))
        searcher.fit(x, y)
        assert list(searcher.cv_results_["params"]) == surface_candidates(search)


def test_a_halving_search_writes_no_surface(tmp_path, dask_client):
    data = tmp_path / "cells.nc"
    synthetic(cells=2, steps=300).to_netcdf(data)
    job = write_spec(tmp_path, synthetic_spec(data, search__method="halving"))
    api.run(job, client=dask_client)
    out = api.load_spec(job).output_dir
    assert (out / "results.nc").exists() and not (out / "cv_results.nc").exists()


def test_a_record_carries_the_scores_short_and_nan_as_null():
    import json
    import math

    from hpctune.output.record import PartitionResult

    result = PartitionResult(
        index=0, status="ok", cv_results={"mean_test_r2": [0.123456789, math.nan]}
    )
    record = json.loads(json.dumps(result.record(), allow_nan=False))
    assert record["cv_results"] == {"mean_test_r2": [0.1234568, None]}
    back = PartitionResult.from_record(record).cv_results["mean_test_r2"]
    assert back[0] == 0.1234568 and math.isnan(back[1])
    assert "cv_results" not in PartitionResult(index=1, status="skipped").record()
