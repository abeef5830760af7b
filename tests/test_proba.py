"""``hpctune predict --proba``: a classifier's class probabilities beside its labels, on one
class axis for every cell (0 for a class a cell's model never saw)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api

LOGISTIC = ["sklearn.preprocessing.StandardScaler", "sklearn.linear_model.LogisticRegression"]


def classifier_spec(path, target, **keys):
    """A logistic regression per cell on ``target`` of the file ``path``, scored by accuracy,
    on two worker threads."""
    return synthetic_spec(
        path,
        data__target=target,
        search__estimator=LOGISTIC,
        search__params={"logisticregression__C": [1.0]},
        search__scoring=["accuracy"],
        cluster__processes=False,
        cluster__workers=2,
        **keys,
    )


@pytest.fixture
def wet_job(tmp_path, real_data):
    """The real data with ``wet``: 1 where sig is above its cell's median, NaN where sig is
    missing (every fourth step); a logistic regression per cell."""
    ds = xr.open_dataset(real_data).isel(time=slice(0, None, 4)).load()  # a quicker run
    ds["wet"] = (ds.sig > ds.sig.median("time")).where(ds.sig.notnull()).astype(float)
    ds.to_netcdf(tmp_path / "wet.nc")
    spec = classifier_spec(
        tmp_path / "wet.nc", "wet", data__inputs=INPUTS, data__test={"from": "2016-01-01"}
    )
    job = write_spec(tmp_path, spec)
    assert api.run(job).ok == 5
    return job, ds


def test_probabilities_are_each_cells_model_predict_proba(wet_job, tmp_path, capsys):
    job, ds = wet_job
    out = tmp_path / "proba.nc"
    shown = hpctune(capsys, "predict", job, "-o", out, "--proba", "--json")
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["classes"] == [0.0, 1.0]
    written = xr.open_dataset(out)
    assert written.probability.dims == ("space", "time", "class")
    assert list(written["class"].values) == [0.0, 1.0]
    for cell in range(5):
        model = api.load_model(job, cell)
        x = np.stack([ds[v].isel(space=cell).values for v in INPUTS], axis=-1)
        valid = np.isfinite(x).all(axis=-1)
        probs = written.probability.values[cell]
        np.testing.assert_allclose(probs[valid], model.predict_proba(x[valid]), rtol=1e-12)
        assert np.isnan(probs[~valid]).all()
        labels = written.prediction.values[cell]
        np.testing.assert_array_equal(labels[valid], model.predict(x[valid]))


def test_one_class_axis_for_every_cell_and_0_for_a_class_a_model_never_saw(tmp_path):
    ds = synthetic(cells=4, steps=240)
    y = ds.y.values
    labels = np.digitize(y, np.nanquantile(y, [1 / 3, 2 / 3])).astype(float)
    labels[0] = np.where(labels[0] == 2, 1, labels[0])  # cell 0 never sees class 2
    labels[np.isnan(y)] = np.nan
    ds["kind"] = (("space", "time"), labels)
    ds.to_netcdf(tmp_path / "kinds.nc")
    spec = classifier_spec(tmp_path / "kinds.nc", "kind")
    job = write_spec(tmp_path, spec)
    assert api.run(job).ok == 4
    both = api.prediction(job, proba=True).compute()
    assert list(both["class"].values) == [0.0, 1.0, 2.0]
    probs = both.probability.values  # (space, time, class)
    x = np.stack([ds[v].values for v in ("x1", "x2", "x3")], axis=-1).astype(np.float64)
    valid = np.isfinite(x).all(axis=-1)
    assert (probs[0][valid[0], 2] == 0).all()  # never trained on class 2
    np.testing.assert_allclose(probs[valid].sum(axis=-1), 1.0, rtol=1e-12)
    model = api.load_model(job, 0)
    assert list(model.classes_) == [0.0, 1.0]
    np.testing.assert_allclose(probs[0][valid[0], :2], model.predict_proba(x[0][valid[0]]))
    plain = api.prediction(job).compute()
    np.testing.assert_array_equal(both.prediction.values, plain.values)


def test_proba_of_a_regressor_exits_2_naming_it(tmp_path, capsys):
    synthetic(cells=3, steps=120).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__params={"ridge__alpha": [1.0]},
        cluster__processes=False,
        cluster__workers=2,
    )
    job = write_spec(tmp_path, spec)
    api.run(job)
    shown = hpctune(capsys, "predict", job, "-o", tmp_path / "p.nc", "--proba")
    assert shown.code == 2, shown
    assert shown.err.strip().splitlines() == [
        "hpctune: error: --proba: the models of synthetic (Ridge) give no class probabilities "
        "(predict_proba: a classifier; an SVC needs probability: true in search.fixed)"
    ]
    assert not (tmp_path / "p.nc").exists()
