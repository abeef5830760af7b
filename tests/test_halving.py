"""Successive halving (``search.method: halving`` / ``halving-random``): a search per cell on the
real data that picks what scikit-learn's own halving search picks on the same rows, its
iterations in results.nc, its keys checked like the rest of the spec, and its cost in ``plan``
and ``validate``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, REAL_DATA, write_spec
from helpers_cli import hpctune as cli
from sklearn import model_selection as ms
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import hpctune
from hpctune import api
from hpctune.search import work_counts
from hpctune.search.halving import schedule
from hpctune.search.partition import select_rows
from hpctune.spec import from_mapping

GRID = {"kneighborsregressor__n_neighbors": [5, 10, 20, 40, 80], "kneighborsregressor__p": [1, 2]}
SAMPLE = slice(0, None, 3)  # every third time step of the real data: a quicker search


def halving_spec(data_path, output, **search):
    """A halving grid search (10 candidates, factor 3) per cell of the real data."""
    return {
        "name": "halving",
        "data": {
            "paths": str(data_path),
            "inputs": INPUTS,
            "target": "sig",
            "test": {"from": "2016-01-01"},
        },
        "search": {
            "method": "halving",
            "estimator": [
                "sklearn.preprocessing.StandardScaler",
                "sklearn.neighbors.KNeighborsRegressor",
            ],
            "params": GRID,
            "cv": {"kind": "kfold", "splits": 3},
            "scoring": "r2",
            "halving": {"factor": 3},
            **search,
        },
        "output": str(output),
    }


@pytest.fixture(scope="module")
def real_cells(tmp_path_factory):
    folder = tmp_path_factory.mktemp("halving-data")
    ds = xr.open_dataset(REAL_DATA).isel(time=SAMPLE).load()
    ds.to_netcdf(folder / "cells.nc")
    return folder / "cells.nc", ds


@pytest.fixture(scope="module")
def halving_run(real_cells, tmp_path_factory, dask_client):
    path, ds = real_cells
    folder = tmp_path_factory.mktemp("halving-run")
    spec = write_spec(folder, halving_spec(path, folder / "out"))
    summary = hpctune.run(spec, client=dask_client)
    return ds, summary


def test_a_halving_search_per_cell_picks_what_scikit_learn_picks(halving_run):
    ds, summary = halving_run
    results = summary.results
    assert list(results.status.values) == ["ok"] * ds.sizes["space"], results.reason.values
    start = np.datetime64("2016-01-01")
    for cell in range(ds.sizes["space"]):
        x = np.stack([ds[v].isel(space=cell).values for v in INPUTS], axis=-1)
        rows = select_rows(x, ds["sig"].isel(space=cell).values, ds.time.values, start)
        reference = ms.HalvingGridSearchCV(
            make_pipeline(StandardScaler(), KNeighborsRegressor()),
            GRID,
            factor=3,
            cv=ms.KFold(n_splits=3),
            scoring="r2",
            random_state=0,
            error_score="raise",
        ).fit(rows.x_train, rows.y_train)
        row = results.isel(space=cell)
        best = {
            "kneighborsregressor__n_neighbors": float(row.best_kneighborsregressor__n_neighbors),
            "kneighborsregressor__p": float(row.best_kneighborsregressor__p),
        }
        for name, value in best.items():
            assert value in GRID[name]
        assert best == reference.best_params_
        assert float(row.best_score) == pytest.approx(reference.best_score_, rel=1e-9)
        assert int(row.n_iterations) == reference.n_iterations_
        assert int(row.n_candidates_last) == reference.n_candidates_[-1]
        assert int(row.n_resources_last) == reference.n_resources_[-1]
        predicted = reference.best_estimator_.predict(rows.x_test)
        r2 = (
            1
            - ((rows.y_test - predicted) ** 2).sum()
            / ((rows.y_test - rows.y_test.mean()) ** 2).sum()
        )
        assert float(row.test_r2) == pytest.approx(r2, rel=1e-9)


def test_a_share_of_the_rows_gives_every_cell_the_same_iterations(
    real_cells, tmp_path, dask_client
):
    """``min_resources: 0.3`` with ``factor: 3``: every cell ranks its 10 candidates on 30% of
    its own training rows, then the best 4 on three times that, whatever its rows (a whole
    number would give the cells with fewer rows one iteration only); each cell's search is
    scikit-learn's with that whole number."""
    path, ds = real_cells
    spec = halving_spec(path, tmp_path / "out", halving={"factor": 3, "min_resources": 0.3})
    results = hpctune.run(write_spec(tmp_path, spec), client=dask_client).results
    start = np.datetime64("2016-01-01")
    assert len(set(results.n_train.values.tolist())) > 1, "cells of different rows"
    for cell in range(ds.sizes["space"]):
        x = np.stack([ds[v].isel(space=cell).values for v in INPUTS], axis=-1)
        rows = select_rows(x, ds["sig"].isel(space=cell).values, ds.time.values, start)
        first = int(0.3 * len(rows.y_train))
        reference = ms.HalvingGridSearchCV(
            make_pipeline(StandardScaler(), KNeighborsRegressor()),
            GRID,
            factor=3,
            min_resources=first,
            cv=ms.KFold(n_splits=3),
            scoring="r2",
            random_state=0,
        ).fit(rows.x_train, rows.y_train)
        row = results.isel(space=cell)
        assert reference.n_resources_ == [first, 3 * first]
        assert int(row.n_iterations) == 2
        assert int(row.n_resources_last) == 3 * first
        assert float(row.best_score) == pytest.approx(reference.best_score_, rel=1e-9)


def test_a_share_is_resolved_on_the_partitions_rows_in_the_estimate():
    spec = halving_spec("x.nc", "out", halving={"factor": 5, "min_resources": 0.2})
    search = from_mapping(spec).search
    for rows in (1583, 1600, 1813):
        plan = schedule(search, 48, 3, rows)
        assert plan.candidates == (48, 10)
        assert plan.resources == (rows // 5, rows // 5 * 5)


def test_the_halving_search_is_one_task_per_partition(halving_run):
    _ds, summary = halving_run
    assert summary.granularity == "partition"


def test_the_schedule_is_scikit_learns(halving_run):
    """The estimate ``plan`` and ``validate`` print is scikit-learn's own arithmetic."""
    _ds, summary = halving_run
    job = from_mapping(halving_spec("x.nc", "out"))
    for cell in range(summary.results.sizes["space"]):
        row = summary.results.isel(space=cell)
        plan = schedule(job.search, 10, 3, int(row.n_train))
        assert len(plan.candidates) == int(row.n_iterations)
        assert plan.candidates[-1] == int(row.n_candidates_last)
        assert plan.resources[-1] == int(row.n_resources_last)


def test_other_methods_record_no_iterations(tmp_path):
    from hpctune.output.record import PartitionResult

    plain = PartitionResult(index=0, status="ok")
    assert "halving" not in plain.record()
    halved = PartitionResult(index=0, status="ok", halving={"n_iterations": 2})
    assert PartitionResult.from_record(halved.record()).halving == {"n_iterations": 2}


def test_halving_random_draws_n_iter_candidates(tmp_path):
    spec = halving_spec(
        "x.nc",
        tmp_path / "out",
        method="halving-random",
        n_iter=4,
        params={"kneighborsregressor__n_neighbors": {"randint": [3, 60]}},
    )
    job = from_mapping(spec)
    counts = work_counts(job.search, 5, 3, 1000)
    assert counts["candidates"] == 4
    assert [step["candidates"] for step in counts["halving"]["iterations"]] == [4, 2]


@pytest.mark.parametrize(
    ("search", "key"),
    [
        ({"halving": {"factor": 1}}, "search.halving.factor"),
        ({"halving": {"factor": "three"}}, "search.halving.factor"),
        ({"halving": {"min_resources": 0}}, "search.halving.min_resources"),
        ({"halving": {"min_resources": "all"}}, "search.halving.min_resources"),
        ({"halving": {"min_resources": 1.5}}, "search.halving.min_resources"),
        ({"halving": {"min_resources": 0.0}}, "search.halving.min_resources"),
        ({"halving": {"max_resources": "exhaust"}}, "search.halving.max_resources"),
        ({"halving": {"min_resources": 500, "max_resources": 100}}, "search.halving.min_resources"),
        (
            {"halving": {"resource": "kneighborsregressor__n_neighbors", "max_resources": 50}},
            "search.halving.resource",
        ),
        (
            {"halving": {"resource": "kneighborsregressor__leaf_size"}},
            "search.halving.max_resources",
        ),
        ({"halving": {"ratio": 2}}, "search.halving.ratio"),
        (
            {
                "halving": {"resource": "kneighborsregressor__leaf_size", "max_resources": 40},
                "fixed": {"kneighborsregressor__leaf_size": 30},
            },
            "search.halving.resource",
        ),
        ({"method": "grid"}, "search.halving"),
        ({"scoring": ["r2", "neg_mean_squared_error"]}, "search.scoring"),
        ({"method": "halvin"}, "search.method"),
    ],
)
def test_bad_halving_keys_are_refused_naming_the_key(tmp_path, capsys, search, key):
    spec = write_spec(tmp_path, halving_spec(REAL_DATA, tmp_path / "out", **search))
    outcome = cli(capsys, "validate", spec)
    err = outcome.err.strip().splitlines()
    assert outcome.code == 2
    assert len(err) == 1 and err[0].startswith(f"hpctune: error: {key}: "), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("cluster", "key"),
    [({"granularity": "fit"}, "cluster.granularity"), ({"processes": False}, "cluster.processes")],
)
def test_a_halving_search_is_not_split_into_fits(tmp_path, capsys, cluster, key):
    spec = halving_spec(REAL_DATA, tmp_path / "out")
    spec["cluster"] = cluster
    outcome = cli(capsys, "validate", write_spec(tmp_path, spec))
    assert outcome.code == 2 and outcome.err.startswith(f"hpctune: error: {key}: ")


def test_an_unknown_resource_parameter_is_refused(tmp_path, capsys):
    spec = halving_spec(
        REAL_DATA, tmp_path / "out", halving={"resource": "n_estimators", "max_resources": 100}
    )
    outcome = cli(capsys, "validate", write_spec(tmp_path, spec))
    assert outcome.code == 2
    assert outcome.err.startswith(
        "hpctune: error: search.halving.resource: 'n_estimators' is neither"
    )


def test_existing_specs_keep_their_fingerprint():
    """A spec without halving hashes as before the key existed (its results resume)."""
    spec = halving_spec("x.nc", "out")
    del spec["search"]["halving"]
    spec["search"]["method"] = "grid"
    job = from_mapping(spec)
    assert "halving" not in job.result_defining()["search"]
    halved = from_mapping(halving_spec("x.nc", "out"))
    assert halved.result_defining()["search"]["halving"]["factor"] == 3


def test_validate_estimates_the_halving_fits(tmp_path, capsys):
    spec = write_spec(tmp_path, halving_spec(REAL_DATA, tmp_path / "out"))
    outcome = cli(capsys, "validate", spec, "--json")
    assert outcome.code == 0
    search = json.loads(outcome.out)["search"]
    halving = search["halving"]
    # 10 candidates, factor 3: 10, then 4, then 2, each on 3 folds, + the refit
    assert [step["candidates"] for step in halving["iterations"]] == [10, 4, 2]
    assert search["fits_per_partition"] == (10 + 4 + 2) * 3 + 1
    resources = [step["resources"] for step in halving["iterations"]]
    assert resources == sorted(resources) and resources[-1] <= halving["rows"]


def test_plan_gives_the_cost_of_a_halving_search(real_cells, tmp_path, dask_client):
    path, _ds = real_cells
    spec = write_spec(tmp_path, halving_spec(path, tmp_path / "out"))
    estimate = api.plan(spec, sample=2, client=dask_client)
    assert estimate.fits_per_partition == (10 + 4 + 2) * 3 + 1
    assert estimate.core_seconds > 0
    line = next(line for line in estimate.lines if line.startswith("halving"))
    assert "an estimate" in line and "10 x 3 at" in line
    assert estimate.to_dict()["halving"]["fits_per_partition"] == estimate.fits_per_partition
    assert not (tmp_path / "out").exists()


@pytest.mark.filterwarnings("ignore")  # scikit-learn's notes on the dummy candidates' scores
@pytest.mark.parametrize(
    "halving",
    [
        {"factor": 2},
        {"factor": 3, "min_resources": "smallest"},
        {"factor": 3, "min_resources": 40},
        {"factor": 4, "min_resources": "smallest", "aggressive_elimination": True},
        {"factor": 2.5, "max_resources": 300},
    ],
)
def test_the_schedule_follows_scikit_learn_for_every_setting(halving):
    """The iterations ``validate`` and ``plan`` estimate are those scikit-learn runs."""
    from sklearn.dummy import DummyRegressor

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(500, 2)), rng.normal(size=500)
    grid = {"strategy": ["mean", "median"], "quantile": [0.1, 0.3, 0.5, 0.7, 0.9, None]}
    reference = ms.HalvingGridSearchCV(
        DummyRegressor(), grid, cv=ms.KFold(n_splits=3), random_state=0, **halving
    ).fit(x, y)
    spec = halving_spec("x.nc", "out", params=grid, halving=halving)
    spec["search"]["estimator"] = "sklearn.dummy.DummyRegressor"
    plan = schedule(from_mapping(spec).search, 12, 3, 500)
    assert list(plan.candidates) == reference.n_candidates_
    assert list(plan.resources) == reference.n_resources_
