"""Whole runs on small synthetic data: grids, groups, held-out periods, resume, JSON."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api


def test_stacked_lat_lon_grid_with_sea_cells(tmp_path, dask_client):
    sea = np.zeros(12, dtype=bool)
    sea[[0, 5, 11]] = True
    synthetic(grid=(3, 4), sea=sea).to_netcdf(tmp_path / "grid.nc")
    spec = synthetic_spec(tmp_path / "grid.nc", data__space=["lat", "lon"])
    summary = api.run(write_spec(tmp_path, spec), client=dask_client)
    results = summary.results
    assert results.sizes == {"lat": 3, "lon": 4}  # on the input's grid
    status = results.status.values.reshape(-1)
    assert list(np.flatnonzero(status != "ok")) == [0, 5, 11]
    assert set(status[sea]) == {"skipped"}
    assert all("0 valid training rows" in r for r in results.reason.values.reshape(-1)[sea])
    np.testing.assert_array_equal(results.lat.values, 50.0 - 0.5 * np.arange(3))
    np.testing.assert_array_equal(results.lon.values, 2.0 + 0.5 * np.arange(4))
    assert np.isfinite(results.best_score.values.reshape(-1)[~sea]).all()
    assert summary.ok == 9 and summary.skipped == 3 and summary.exit_code == 0


def test_partition_by_region_pools_the_cells_of_each_value(tmp_path, dask_client):
    ds = synthetic(cells=6)
    ds["region"] = ("space", np.array([2, 1, 2, 1, 3, 2]))
    ds.to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", partition__by="region")
    results = api.run(write_spec(tmp_path, spec), client=dask_client).results
    assert results.sizes == {"partition": 3}
    assert list(results.partition.values) == [1, 2, 3]
    assert list(results.n_cells.values) == [2, 3, 1]
    valid = np.isfinite(ds.y.values).sum(axis=1)
    assert list(results.n_train.values) == [valid[[1, 3]].sum(), valid[[0, 2, 5]].sum(), valid[4]]


def test_held_out_period_gives_test_metrics(tmp_path, dask_client):
    synthetic(steps=400).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", data__test={"from": "2010-05-01"})
    results = api.run(write_spec(tmp_path, spec), client=dask_client).results
    times = xr.open_dataset(tmp_path / "cells.nc").time.values
    ys = xr.open_dataset(tmp_path / "cells.nc").y.values
    late = times >= np.datetime64("2010-05-01")
    assert list(results.n_test.values) == list(np.isfinite(ys[:, late]).sum(axis=1))
    for metric in ("test_r2", "test_rmse", "test_mae", "test_pearson"):
        assert np.isfinite(results[metric].values).all()
    assert (results.test_r2 > 0.5).all(), "the synthetic relation should be learnt"


@pytest.mark.parametrize("kind", ["repeated", "timeseries", "years"])
def test_other_cross_validation_kinds(tmp_path, dask_client, kind):
    synthetic(cells=2, steps=2200).to_netcdf(tmp_path / "cells.nc")
    cv = {"kind": kind} if kind == "years" else {"kind": kind, "splits": 3}
    if kind == "repeated":
        cv["repeats"] = 2
    spec = synthetic_spec(tmp_path / "cells.nc", search__cv=cv)
    results = api.run(write_spec(tmp_path, spec), client=dask_client).results
    assert list(results.status.values) == ["ok", "ok"], list(results.reason.values)


def test_random_search_samples_n_iter_candidates(tmp_path, dask_client):
    synthetic(cells=2).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__method="random",
        search__n_iter=3,
        search__params={"ridge__alpha": {"loguniform": [1e-3, 1e3]}},
    )
    results = api.run(write_spec(tmp_path, spec), client=dask_client).results
    alpha = results.best_ridge__alpha.values
    assert results.best_ridge__alpha.dtype == np.float64
    assert ((alpha >= 1e-3) & (alpha <= 1e3)).all()


def test_rerun_resumes_and_changed_spec_refuses(synthetic_job, dask_client, capsys):
    first = api.run(synthetic_job, client=dask_client)
    again = api.run(synthetic_job, client=dask_client)
    assert (first.ok, first.resumed) == (6, 0)
    assert (again.ok, again.resumed) == (6, 6)
    xr.testing.assert_identical(first.results.drop_attrs(), again.results.drop_attrs())
    result = hpctune(capsys, "run", synthetic_job, "--set", "search.params.ridge__alpha=[5.0]")
    assert result.code == 2
    assert "holds results of a different spec (changed: search.params.ridge__alpha)" in result.err
    assert "--restart" in result.err
    restarted = api.run(
        synthetic_job, ["search.params.ridge__alpha=[5.0]"], restart=True, client=dask_client
    )
    assert (restarted.ok, restarted.resumed) == (6, 0)
    assert set(restarted.results.best_ridge__alpha.values) == {5.0}
    again = api.run(synthetic_job, restart=True, client=dask_client)  # same workers, new journals
    assert list(again.results.status.values) == ["ok"] * 6


def test_slices_write_only_their_partitions_and_merge_completes(synthetic_job, dask_client):
    part = api.run(synthetic_job, slice="1/3", client=dask_client)
    assert part.total == 2 and part.ok == 2 and part.results is None
    merged = api.merge(synthetic_job)
    assert list(merged.status.values) == ["pending"] * 2 + ["ok"] * 2 + ["pending"] * 2
    for index in (0, 2):
        api.run(synthetic_job, slice=f"{index}/3", client=dask_client)
    merged = api.merge(synthetic_job)
    assert list(merged.status.values) == ["ok"] * 6


def test_a_slice_says_it_wrote_no_results_nc_and_what_to_run(synthetic_job, capsys, dask_client):
    output = synthetic_job.parent / "out" / "synthetic"
    part = api.run(synthetic_job, ["search.seed=3"], slice="1/3", client=dask_client)
    assert part.results is None and not (output / "results.nc").exists()
    data = part.to_dict()
    assert data["slice"] == "1/3" and data["results_written"] is False
    command = f"hpctune merge {synthetic_job} --set search.seed=3"
    assert data["merge_command"] == command
    line = part.line()
    assert line.startswith("synthetic slice 1/3: 2 ok, 0 skipped, 0 failed (0 resumed) of 2 ")
    assert line.endswith(
        f"-> the slice's partitions in {output}, not results.nc: once every slice has run, "
        f"write it with: {command}"
    )

    text = hpctune(capsys, "run", synthetic_job, "--slice", "0/3", "--set", "search.seed=3")
    assert text.code == 0, text.err
    last = text.out.strip().splitlines()[-1]
    assert last.startswith("synthetic slice 0/3: 2 ok") and last.endswith(
        f"write it with: {command}"
    )
    assert not (output / "results.nc").exists()
    # the command it names is the one that writes results.nc (the third slice still pending)
    merged = hpctune(capsys, *shlex.split(command)[1:])
    assert merged.code == 3 and merged.out.strip() == "4 ok, 0 skipped, 0 failed, 2 pending"
    assert (output / "results.nc").exists()


def test_cli_run_json_summary(synthetic_job, capsys):
    result = hpctune(capsys, "run", synthetic_job, "--json", "--set", "cluster.workers=1")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert {k: summary[k] for k in ("ok", "skipped", "failed", "resumed", "pending")} == {
        "ok": 6,
        "skipped": 0,
        "failed": 0,
        "resumed": 0,
        "pending": 0,
    }
    assert summary["output"] == str(synthetic_job.parent / "out" / "synthetic")
    assert (summary["slice"], summary["results_written"], summary["merge_command"]) == (
        None,
        True,
        None,
    )
    assert (synthetic_job.parent / "out" / "synthetic" / "results.nc").exists()
    models = sorted(
        p.name for p in (synthetic_job.parent / "out" / "synthetic" / "models").iterdir()
    )
    assert models and all(name.endswith(".pack") for name in models)
    assert len(models) <= 2  # one pack per worker process, not one file per partition


def test_validate_reports_counts_without_writing(synthetic_job, capsys):
    result = hpctune(capsys, "validate", synthetic_job, "--json")
    assert result.code == 0
    report = json.loads(result.out)
    assert report["partitions"]["count"] == 6
    assert report["search"] == {
        "method": "grid",
        "candidates": 3,
        "folds": 3,
        "fits_per_partition": 10,
        "fits": 60,
    }
    assert report["data"]["variables"] == {
        "x1": "float32",
        "x2": "float32",
        "x3": "float32",
        "y": "float32",
    }
    # the spec with every default filled in, as the report page shows it
    spec = report["spec"]
    assert spec == api.load_spec(synthetic_job).to_dict()
    assert spec["partition"] == {"by": "cell"}
    assert spec["cluster"]["mode"] == "auto" and spec["cluster"]["threads"] == 1
    assert spec["scheduler"]["walltime"] == "01:00:00" and spec["scheduler"]["grace"] == 120
    assert spec["search"]["cv"] == {"kind": "kfold", "splits": 3, "repeats": None, "shuffle": None}
    assert spec["data"]["paths"] == [str(synthetic_job.parent / "cells.nc")]
    assert not (synthetic_job.parent / "out").exists()


@pytest.mark.parametrize(
    "change, error",
    [
        ({"data__target": "no_such_variable"}, "no_such_variable"),  # before the workers start
        pytest.param(  # while they start
            {"search__params": {"ridge__alpa": [1.0]}}, "ridge__alpa", marks=pytest.mark.full
        ),
    ],
)
def test_local_workers_started_early_stop_when_the_checks_fail(tmp_path, change, error):
    """In local mode the workers start once the data have passed their checks, while the
    estimator is checked; a failed check stops them again and nothing is written."""
    import time

    import psutil

    from hpctune.errors import HpctuneError
    from hpctune.execution.driver import run

    synthetic(cells=2).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", **change)
    spec["cluster"] = {"mode": "local", "workers": 1}
    job = api.load_spec(write_spec(tmp_path, spec))
    me = psutil.Process()

    def workers() -> set[int]:
        """Processes under this one, but multiprocessing's resource tracker and forkserver,
        which stay for the session. A forked worker's command line is its forkserver's: the
        server is told apart as this process's own child."""

        def helper(p: psutil.Process) -> bool:
            command = " ".join(p.cmdline())
            return "resource_tracker" in command or ("forkserver" in command and p.ppid() == me.pid)

        return {p.pid for p in me.children(recursive=True) if not helper(p)}

    before = workers()
    with pytest.raises(HpctuneError, match=error):
        run(job)
    time.sleep(5)  # workers still starting when run() returned would be up by now
    deadline = time.monotonic() + 30
    while workers() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not workers() - before
    assert not job.output_dir.exists()
