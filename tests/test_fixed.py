"""``search.fixed``: constructor arguments set on every candidate and never searched, checked
like ``search.params``, absent from results.nc's ``best_*`` variables."""

from __future__ import annotations

import json

import pytest
import xarray as xr
from helpers import real_data_spec, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api
from hpctune.checks import check_search
from hpctune.errors import SpecError
from hpctune.search import PartitionSearch
from hpctune.spec.load import load_spec


def _spec(**changes):
    return synthetic_spec("cells.nc", **changes)


def test_fixed_arguments_reach_the_saved_models_and_are_no_best_variables(
    tmp_path, real_data, dask_client
):
    """On the real data, a Ridge without intercept: every saved model has it (fitted so: its
    intercept is 0), results.nc's spec records it, and only the searched alpha is a ``best_*``
    variable or a report map."""
    spec = real_data_spec(
        real_data,
        search__fixed={"ridge__fit_intercept": False, "ridge__solver": "svd"},
    )
    job = write_spec(tmp_path, spec)
    results = api.run(job, client=dask_client).results
    assert list(results.status.values) == ["ok"] * 5
    best = sorted(name for name in results.data_vars if name.startswith("best_"))
    assert best == ["best_ridge__alpha", "best_score"]
    on_disk = xr.open_dataset(tmp_path / "out" / "synthetic" / "results.nc")
    assert not [name for name in on_disk.data_vars if "intercept" in name or "solver" in name]
    recorded = json.loads(on_disk.attrs["hpctune_spec"])["search"]["fixed"]
    assert recorded == {"ridge__fit_intercept": False, "ridge__solver": "svd"}
    loaded = api.load_spec(job)
    for cell in range(5):
        model = api.load_model(loaded, cell)
        params = model.get_params()
        assert params["ridge__fit_intercept"] is False and params["ridge__solver"] == "svd"
        assert model.named_steps["ridge"].intercept_ == 0.0
        assert params["ridge__alpha"] == results.best_ridge__alpha.values[cell]
    report = api.report(job)
    maps = sorted(f.name for f in report.figures if f.name.startswith("map_best"))
    assert maps == ["map_best_ridge__alpha.png", "map_best_score.png"]
    assert "ridge__fit_intercept" in report.index.read_text()  # the spec, as written


def test_partition_search_builds_its_estimator_with_the_fixed_arguments():
    job = load_spec(_spec(search__fixed={"ridge__tol": 0.01}), base_dir="/base")
    estimator = PartitionSearch(job.search).estimator
    assert estimator.get_params()["ridge__tol"] == 0.01
    assert PartitionSearch(load_spec(_spec(), base_dir="/b").search).estimator.get_params()[
        "ridge__tol"
    ] == pytest.approx(1e-4)


def test_a_spec_without_fixed_arguments_keeps_its_fingerprint_keys(tmp_path):
    plain = load_spec(_spec(), base_dir="/base")
    fixed = load_spec(_spec(search__fixed={"ridge__tol": 0.01}), base_dir="/base")
    assert "fixed" not in plain.result_defining()["search"]
    assert fixed.result_defining()["search"]["fixed"] == {"ridge__tol": 0.01}
    assert plain.fingerprint() != fixed.fingerprint()
    assert plain.to_dict()["search"]["fixed"] == {}
    path = write_spec(tmp_path, _spec())
    overridden = load_spec(path, ["search.fixed.ridge__tol=0.01"])
    assert overridden.search.fixed == {"ridge__tol": 0.01}


@pytest.mark.parametrize(
    ("fixed", "key", "words"),
    [
        ({"ridge__alpha": 2.0}, "search.fixed", "ridge__alpha is also searched"),
        ({"ridge alpha": 2.0}, "search.fixed", "not a valid name"),
        ({"ridge__alpah": 2.0}, "search.fixed.ridge__alpah", "did you mean ridge__alpha?"),
        (
            {"standardscaler__anything": 1},
            "search.fixed.standardscaler__anything",
            "not a parameter of the pipeline StandardScaler -> Ridge",
        ),
        ({"ridge__solver": "fastest"}, "search.fixed.ridge__solver", "'solver' parameter"),
        ({"ridge__tol": -1.0}, "search.fixed.ridge__tol", "'tol' parameter"),
    ],
)
def test_bad_fixed_arguments_name_their_key(tmp_path, capsys, fixed, key, words):
    """Exit 2, one line naming the key (and the name), no traceback, nothing written."""
    data = tmp_path / "cells.nc"
    synthetic(cells=2, steps=80).to_netcdf(data)
    job = write_spec(tmp_path, synthetic_spec(data, search__fixed=fixed))
    outcome = hpctune(capsys, "run", job)
    assert outcome.code == 2, outcome.err
    lines = outcome.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hpctune: error: {key}: "), lines
    assert words in lines[0] and "Traceback" not in outcome.err
    assert not (tmp_path / "out").exists()


def test_fixed_must_be_a_mapping():
    with pytest.raises(SpecError) as info:
        load_spec(_spec(search__fixed=["ridge__tol", 0.01]), base_dir="/base")
    assert info.value.key == "search.fixed" and "mapping" in info.value.message


def test_a_kwargs_estimator_takes_any_name_fixed_or_searched():
    """LightGBM's constructor takes ``**kwargs``: its own parameters pass the check, fixed and
    searched; the scaler before it (no ``**kwargs``) and nested names still do not."""
    pytest.importorskip("lightgbm", reason="LightGBM is in the boost extra")
    base = {
        "search__estimator": ["sklearn.preprocessing.StandardScaler", "lightgbm.LGBMRegressor"],
        "search__params": {"lgbmregressor__min_data_in_bin": [3, 5]},
        "search__fixed": {"lgbmregressor__verbose": -1, "lgbmregressor__n_jobs": 1},
    }
    job = load_spec(_spec(**base), base_dir="/base")
    check_search(job)
    params = PartitionSearch(job.search).estimator.get_params()
    assert params["lgbmregressor__verbose"] == -1 and params["lgbmregressor__n_jobs"] == 1
    for name in ("standardscaler__verbose", "lgbmregressor__a__b"):
        bad = load_spec(_spec(**{**base, "search__fixed": {name: 1}}), base_dir="/base")
        with pytest.raises(SpecError) as info:
            check_search(bad)
        assert info.value.key == f"search.fixed.{name}"
