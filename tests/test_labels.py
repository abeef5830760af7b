"""Class labels of any dtype: a classifier trained on text labels (``"wet"``, ``"dry"``) is
scored with them, saved with them as its classes, and ``predict`` writes them as text."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, synthetic_spec, write_spec
from helpers_cli import hpctune
from sklearn.metrics import accuracy_score

import hpctune as api

LOGISTIC = ["sklearn.preprocessing.StandardScaler", "sklearn.linear_model.LogisticRegression"]
TEST_FROM = np.datetime64("2016-01-01")


@pytest.fixture
def state(tmp_path, real_data):
    """The real data (every fourth step) with ``state``: "wet" where sig is above its cell's
    median, else "dry", "" where sig is missing; cell 4 is "wet" throughout."""
    ds = xr.open_dataset(real_data).isel(time=slice(0, None, 4)).load()
    above = (ds.sig > ds.sig.median("time")).values
    labels = np.where(above, "wet", "dry").astype(object)
    labels[~np.isfinite(ds.sig.values)] = ""
    labels[4] = "wet"
    ds["state"] = (("space", "time"), labels)
    ds.to_netcdf(tmp_path / "state.nc", encoding={"state": {"dtype": str}})  # NetCDF-4 strings
    with xr.open_dataset(tmp_path / "state.nc") as written:
        assert written.state.dtype.kind in "OU"  # read as text
    return tmp_path / "state.nc", ds, labels


def spec_of(path, **changes):
    base = {
        "data__inputs": INPUTS,
        "data__target": "state",
        "data__test": {"from": "2016-01-01"},
        "search__estimator": LOGISTIC,
        "search__params": {"logisticregression__C": [1.0]},
        "search__scoring": ["accuracy"],
        "cluster__processes": False,
        "cluster__workers": 2,
    }
    return synthetic_spec(path, **{**base, **changes})


def test_a_classifier_of_text_labels_is_scored_saved_and_predicted_with_them(
    state, tmp_path, dask_client
):
    path, ds, labels = state
    job = write_spec(tmp_path, spec_of(path))
    results = api.run(job).results
    assert list(results.status.values) == ["ok"] * 4 + ["skipped"]
    assert results.reason.values[4].startswith("the target is constant ('wet')")
    late = ds.time.values >= TEST_FROM
    summary = api.predict(job, out=tmp_path / "pred.nc", client=dask_client)
    predicted = xr.open_dataset(tmp_path / "pred.nc").prediction
    assert predicted.dtype.kind in "OU" and predicted.dims == ("space", "time")
    for cell in range(4):
        model = api.load_model(job, cell)
        assert list(model.classes_) == ["dry", "wet"]
        x = np.stack([ds[v].isel(space=cell).values for v in INPUTS], axis=-1)
        inputs = np.isfinite(x).all(axis=-1)
        test = late & inputs & (labels[cell] != "")
        expected = accuracy_score(labels[cell][test].astype(str), model.predict(x[test]))
        assert float(results.test_accuracy.values[cell]) == pytest.approx(expected, rel=1e-12)
        row = predicted.values[cell]
        np.testing.assert_array_equal(row[inputs].astype(str), model.predict(x[inputs]))
        assert (row[~inputs] == "").all()
    assert (predicted.values[4] == "").all()  # skipped: no model
    assert summary.predicted == int(sum((predicted.values[c] != "").sum() for c in range(5)))


def test_probabilities_of_text_labels_on_a_text_class_axis(state, tmp_path, dask_client):
    path, ds, _ = state
    job = write_spec(tmp_path, spec_of(path))
    assert api.run(job).ok == 4
    summary = api.predict(job, out=tmp_path / "proba.nc", proba=True, client=dask_client)
    assert summary.classes == ("dry", "wet")
    written = xr.open_dataset(tmp_path / "proba.nc")
    lazy = api.prediction(job, proba=True).compute()
    assert list(written["class"].values) == ["dry", "wet"] == list(lazy["class"].values)
    assert written.prediction.dtype.kind in "OU"
    for cell in range(4):
        model = api.load_model(job, cell)
        x = np.stack([ds[v].isel(space=cell).values for v in INPUTS], axis=-1)
        inputs = np.isfinite(x).all(axis=-1)
        for both in (written, lazy):
            probs = both.probability.values[cell]
            np.testing.assert_allclose(probs[inputs], model.predict_proba(x[inputs]), rtol=1e-12)
            assert np.isnan(probs[~inputs]).all()
            row = both.prediction.values[cell]
            np.testing.assert_array_equal(row[inputs].astype(str), model.predict(x[inputs]))
            assert (row[~inputs] == "").all()
    assert (written.prediction.values[4] == "").all()  # skipped: no model
    assert np.isnan(written.probability.values[4]).all()


def test_text_labels_for_a_regressor_exit_2_naming_data_target(state, tmp_path, capsys):
    path, _, _ = state
    ridge = spec_of(
        path,
        search__estimator=["sklearn.preprocessing.StandardScaler", "sklearn.linear_model.Ridge"],
        search__params={"ridge__alpha": [1.0]},
        search__scoring=["r2"],
    )
    job = write_spec(tmp_path, ridge, "ridge.yaml")
    for command in ("validate", "run"):
        shown = hpctune(capsys, command, job)
        assert shown.code == 2, shown
        lines = shown.err.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("hpctune: error: data.target: variable 'state' holds text")
        assert lines[0].endswith(
            "labels for a classifier, and Ridge is not one (a regressor needs numbers)"
        )
