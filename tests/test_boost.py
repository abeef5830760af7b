"""LightGBM, XGBoost and CatBoost estimators (the ``boost`` extra) end to end on the real data:
their searches run, their model files load (only the reviewed types of their library), their
predictions equal the run's test scores, each fit gets one thread and prints nothing by default;
a model file asking for any other type is refused before anything in it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from helpers import real_data_spec, synthetic, synthetic_spec, tamper_model, write_spec
from helpers_cli import hpctune
from sklearn.metrics import r2_score

import hpctune as api
from hpctune.search import build_estimator
from hpctune.spec import SearchSpec

TEST_FROM = np.datetime64("2016-01-01")
TESTS = str(Path(__file__).parent)

SEARCHES = {
    "lightgbm": (
        "lightgbm.LGBMRegressor",
        {"lgbmregressor__n_estimators": [20, 40], "lgbmregressor__num_leaves": [7]},
        {"n_jobs": 1, "verbose": -1},
    ),
    "xgboost": (
        "xgboost.XGBRegressor",
        {"xgbregressor__n_estimators": [20, 40], "xgbregressor__max_depth": [3]},
        {"n_jobs": 1},
    ),
    "catboost": (
        "catboost.CatBoostRegressor",
        {"catboostregressor__iterations": [20, 40], "catboostregressor__depth": [3]},
        {"thread_count": 1, "verbose": False, "allow_writing_files": False},
    ),
}


def _needs(library: str) -> None:
    pytest.importorskip(
        library, reason=f"{library} is not installed (pip install 'hpctune[boost]')"
    )


def _real_job(folder: Path, real_data: Path, library: str, params: dict | None = None) -> Path:
    estimator, searched, _ = SEARCHES[library]
    spec = real_data_spec(
        real_data,
        name=f"boost-{library}",
        search__estimator=["sklearn.preprocessing.StandardScaler", estimator],
        search__params=params or searched,
        search__cv={"kind": "kfold", "splits": 2},
    )
    return write_spec(folder, spec)


@pytest.mark.parametrize(
    "library",
    [
        pytest.param("lightgbm", marks=pytest.mark.full),
        pytest.param("xgboost", marks=pytest.mark.full),
        pytest.param("catboost", marks=pytest.mark.full),
    ],
)
def test_search_save_load_predict_equal_the_runs_test_r2(tmp_path, real_data, dask_client, library):
    """A scaler + booster pipeline per cell of the real data: every cell ok, the model file
    loads (as a Pipeline, with one thread and quiet), and predicting the same file gives on the
    test period of each cell exactly the r2 the run recorded."""
    _needs(library)
    job = _real_job(tmp_path, real_data, library)
    results = api.run(job, client=dask_client).results
    assert list(results.status.values) == ["ok"] * 5, list(results.reason.values)

    model = api.load_model(api.load_spec(job), 2)
    assert type(model).__name__ == "Pipeline"
    booster = model.steps[-1][1]
    _, _, defaults = SEARCHES[library]
    assert {k: booster.get_params()[k] for k in defaults} == defaults

    api.predict(job, data=real_data, out=tmp_path / "pred.nc", client=dask_client)
    predicted = xr.open_dataset(tmp_path / "pred.nc").prediction.values
    data = xr.open_dataset(real_data)
    late = data.time.values >= TEST_FROM
    for cell in range(5):
        y = data.sig.values[cell, late]
        yp = predicted[cell, late]
        valid = np.isfinite(y) & np.isfinite(yp)
        assert valid.sum() == results.n_test.values[cell]
        assert abs(r2_score(y[valid], yp[valid]) - results.test_r2.values[cell]) < 1e-9
    assert not (Path.cwd() / "catboost_info").exists()


def _search(estimator: list[str], params: dict) -> SearchSpec:
    return SearchSpec(estimator=estimator, params=params)


def test_threads_and_quiet_unless_the_spec_sets_them():
    """One thread and no output by default; whatever the spec sets (under any of the library's
    names for it) is left to the spec."""
    _needs("lightgbm")
    alone = build_estimator(_search(["lightgbm.LGBMRegressor"], {"num_leaves": [7]}))
    assert alone.get_params()["n_jobs"] == 1 and alone.get_params()["verbose"] == -1

    searched = _search(
        ["sklearn.preprocessing.StandardScaler", "lightgbm.LGBMRegressor"],
        {"lgbmregressor__n_jobs": [4], "lgbmregressor__verbosity": [0]},
    )
    step = build_estimator(searched).steps[-1][1]
    assert step.get_params()["n_jobs"] is None  # the library's default, set per candidate
    assert "verbose" not in step.get_params()  # a **kwargs of LightGBM's: only once set
    aliased = build_estimator(_search(["lightgbm.LGBMRegressor"], {"num_threads": [2]}))
    assert aliased.get_params()["n_jobs"] is None and aliased.get_params()["verbose"] == -1


def test_sklearn_estimators_are_built_as_before():
    model = build_estimator(_search(["sklearn.svm.SVR"], {"C": [1.0]}))
    assert model.get_params() == type(model)().get_params()


def test_a_catboost_parameter_is_checked_against_its_constructor(tmp_path):
    """CatBoost's ``get_params()`` lists only what was set: ``depth`` is still a parameter,
    a misspelt one still refused with the key named."""
    _needs("catboost")
    synthetic(cells=2, steps=120).to_netcdf(tmp_path / "cells.nc")

    def job(params: dict) -> Path:
        spec = synthetic_spec(
            tmp_path / "cells.nc",
            search__estimator=["catboost.CatBoostRegressor"],
            search__params=params,
        )
        return write_spec(tmp_path, spec)

    assert api.validate(job({"depth": [3]}))["data"]
    with pytest.raises(api.SpecError, match=r"search\.params\.dpeth: .*did you mean depth"):
        api.validate(job({"dpeth": [3]}))


def _swap(node: str, module: str, cls: str) -> Any:
    """A schema change: the object at attribute ``node`` of the final step asks for
    ``module.cls`` instead (:func:`helpers.tamper_model`)."""

    def swap(schema: dict) -> None:
        steps = schema["content"]["content"]["steps"]["content"]
        final = steps[-1]["content"][1]
        final["content"]["content"][node].update({"__module__": module, "__class__": cls})

    return swap


def test_a_model_asking_for_an_untrusted_type_is_refused_and_nothing_runs(
    tmp_path, real_data, dask_client, capsys, monkeypatch
):
    """A LightGBM model file whose booster is swapped for another class: ``predict`` exits 2
    naming the type and ``--trust``, writes nothing, rebuilds nothing; trusting it by name is
    the way through (and then it is rebuilt)."""
    _needs("lightgbm")
    job = _real_job(tmp_path, real_data, "lightgbm", {"lgbmregressor__n_estimators": [10]})
    api.run(job, client=dask_client)
    loaded = api.load_spec(job)
    tamper_model(loaded, 0, _swap("_Booster", "tests_support", "Tattletale"))
    marker = tmp_path / "rebuilt"
    monkeypatch.setenv("HPCTUNE_TATTLETALE", str(marker))
    monkeypatch.syspath_prepend(TESTS)

    out = tmp_path / "pred.nc"
    refused = hpctune(
        capsys, "predict", job, "-o", out, "--set", "cluster.processes=false", "--json"
    )
    assert refused.code == 2, refused.err
    assert "tests_support.Tattletale" in refused.err
    assert "--trust tests_support.Tattletale" in refused.err
    assert len(refused.err.strip().splitlines()) == 1 and "Traceback" not in refused.err
    assert not refused.out and not out.exists() and not marker.exists()
    with pytest.raises(api.HpctuneError, match=r"tests_support\.Tattletale") as info:
        api.load_model(loaded, 0)
    assert info.value.exit_code == 2 and not marker.exists()

    model = api.load_model(loaded, 0, trusted=["tests_support.Tattletale"])
    assert type(model.steps[-1][1]._Booster).__name__ == "Tattletale"
    assert marker.exists()


@pytest.mark.parametrize("chatty", [pytest.param(False, marks=pytest.mark.full), True])
def test_lightgbm_output_never_reaches_stdout(tmp_path, chatty):
    """``run --json`` prints one JSON document: LightGBM is quiet by default, and what it prints
    when the spec asks for it (``verbose: 1``) goes to stderr."""
    _needs("lightgbm")
    synthetic(cells=2, steps=120).to_netcdf(tmp_path / "cells.nc")
    params = {"n_estimators": [5], "min_child_samples": [5]}
    if chatty:
        params["verbose"] = [1]
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__estimator=["lightgbm.LGBMRegressor"],
        search__params=params,
        search__cv={"kind": "kfold", "splits": 2},
        cluster__workers=2,
        cluster__processes=False,
        cluster__dashboard=False,
    )
    job = write_spec(tmp_path, spec)
    done = subprocess.run(
        [sys.executable, "-m", "hpctune", "run", str(job), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] == 2
    assert ("[LightGBM] [Info]" in done.stderr) is chatty


@pytest.mark.parametrize(
    ("library", "regressor", "classifier"),
    [
        ("lightgbm", "LGBMRegressor", "LGBMClassifier"),
        ("xgboost", "XGBRegressor", "XGBClassifier"),
        ("catboost", "CatBoostRegressor", "CatBoostClassifier"),
    ],
)
def test_regressors_and_classifiers_round_trip_with_the_reviewed_types_alone(
    tmp_path, library, regressor, classifier
):
    """A pipeline of each library's regressor, and its classifier (three classes), saved as a
    run saves them, loads trusting only the class and the library's reviewed types, and
    predicts exactly as before."""
    import skops.io
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hpctune.search.boost import library_types, step_defaults
    from hpctune.search.model_file import load_model_file

    module = pytest.importorskip(library, reason=f"{library} is not installed")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    targets = {
        regressor: x[:, 0] + 0.1 * rng.normal(size=300),
        classifier: np.digitize(x[:, 0], [-0.5, 0.5]),
    }
    for name, y in targets.items():
        cls = getattr(module, name)
        model = make_pipeline(StandardScaler(), cls(**step_defaults(cls, ()))).fit(x, y)
        path = tmp_path / f"{name}.skops"
        path.write_bytes(skops.io.dumps(model))
        trusted = [f"{cls.__module__}.{cls.__qualname__}", *library_types([cls])]
        loaded = load_model_file(path, trusted)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
