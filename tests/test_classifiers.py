"""Classifiers: the test period is scored with the spec's own scorers (``test_accuracy``,
``test_f1``, ``test_roc_auc``, ...), regressors keep ``test_r2``, ``test_rmse``, ``test_mae`` and
``test_pearson``; a scorer that cannot score a test period gives NaN, not a failed partition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, synthetic, synthetic_spec, write_spec

import hpctune as api
from hpctune.output.record import TEST_METRICS
from hpctune.reporting.figures import score_limits
from hpctune.search import PartitionSearch
from hpctune.search.metrics import scorer_scores, test_metric_names
from hpctune.spec.load import load_spec

TEST_FROM = "2016-01-01"
LOGISTIC = ["sklearn.preprocessing.StandardScaler", "sklearn.linear_model.LogisticRegression"]


def _binary_target(real_data, dtype="float"):
    """The real data with ``wet``: 1 where sig is above its cell's median, NaN where sig is
    missing (``dtype="bool"``: True/False, every row labelled)."""
    ds = xr.open_dataset(real_data).load()
    above = ds.sig > ds.sig.median("time")
    ds["wet"] = above if dtype == "bool" else above.where(ds.sig.notnull()).astype(float)
    path = real_data.parent / f"wet_{dtype}.nc"
    ds.to_netcdf(path)
    return path, ds


def _test_rows(ds, cell, target):
    """The test rows as hpctune selects them: every input and the target finite."""
    x = np.stack([ds[v].isel(space=cell).values for v in INPUTS], axis=-1)
    y = ds[target].isel(space=cell).values.astype(float)
    keep = (ds.time.values >= np.datetime64(TEST_FROM)) & np.isfinite(x).all(-1) & np.isfinite(y)
    return x[keep], y[keep]


@pytest.mark.parametrize("dtype", ["float", pytest.param("bool", marks=pytest.mark.full)])
def test_a_classifier_is_scored_with_its_own_scorers_on_the_test_period(
    tmp_path, real_data, dask_client, dtype
):
    """On the real data, a logistic regression of a binary target (a float 0/1 with NaN, or a
    bool): results.nc's test_accuracy, test_f1 and test_roc_auc equal scikit-learn's scorers of
    the saved best model on the same test rows; no regression metric is written; predict
    writes the class labels."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    path, ds = _binary_target(real_data, dtype)
    spec = synthetic_spec(
        path,
        data__inputs=INPUTS,
        data__target="wet",
        data__test={"from": TEST_FROM},
        data__chunk=500,
        search__estimator=LOGISTIC,
        search__params={"logisticregression__C": [0.01, 1.0]},
        search__scoring=["accuracy", "f1", "roc_auc"],
    )
    job = write_spec(tmp_path, spec)
    results = api.run(job, client=dask_client).results
    assert list(results.status.values) == ["ok"] * 5, list(results.reason.values)
    tests = sorted(str(n) for n in results.data_vars if str(n).startswith("test_"))
    assert tests == ["test_accuracy", "test_f1", "test_roc_auc"]
    on_disk = xr.open_dataset(tmp_path / "out" / "synthetic" / "results.nc")
    assert on_disk.test_roc_auc.attrs["long_name"] == "roc_auc of the best model on the test period"
    loaded = api.load_spec(job)
    for cell in range(5):
        model = api.load_model(loaded, cell)
        x_test, y_test = _test_rows(ds, cell, "wet")
        row = on_disk.isel(space=cell)
        assert int(row.n_test) == len(y_test)
        labels = model.predict(x_test)
        assert float(row.test_accuracy) == pytest.approx(accuracy_score(y_test, labels), abs=1e-12)
        assert float(row.test_f1) == pytest.approx(f1_score(y_test, labels), abs=1e-12)
        auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
        assert float(row.test_roc_auc) == pytest.approx(auc, abs=1e-12)
        assert 0.5 < auc < 1.0  # learnt something, and a score, not a loss
    predicted = api.prediction(job).compute()
    values = predicted.values[np.isfinite(predicted.values)]
    assert set(np.unique(values)) == {0.0, 1.0}  # labels, not probabilities
    drawn = {f.name for f in api.report(job).figures}
    assert {"map_test_accuracy.png", "map_test_f1.png", "map_test_roc_auc.png"} <= drawn


def test_a_regressor_keeps_the_regression_metrics_whatever_its_scorers(tmp_path, dask_client):
    """The contract for existing specs: a regressor's results.nc has test_r2, test_rmse,
    test_mae and test_pearson, and no test_<scorer> of its cv scorers."""
    synthetic(cells=2, steps=400).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        data__test={"from": "2010-05-01"},
        search__scoring=["r2", "neg_mean_squared_error"],
    )
    results = api.run(write_spec(tmp_path, spec), client=dask_client).results
    tests = sorted(str(n) for n in results.data_vars if str(n).startswith("test_"))
    assert tests == sorted(f"test_{m}" for m in TEST_METRICS)
    assert np.isfinite(results.test_pearson.values).all()


def _search(estimator, scoring, params):
    return load_spec(
        synthetic_spec(
            "cells.nc",
            search__estimator=estimator,
            search__params=params,
            search__scoring=scoring,
            data__test={"from": "2010-05-01"},
        ),
        base_dir="/base",
    ).search


def test_test_metric_names_follow_the_built_estimator():
    regressor = _search(
        ["sklearn.linear_model.Ridge"], ["r2", "neg_mean_absolute_error"], {"alpha": [1.0]}
    )
    assert test_metric_names(regressor) == TEST_METRICS
    forest = _search(
        ["sklearn.ensemble.RandomForestClassifier"],
        ["roc_auc", "balanced_accuracy"],
        {"max_depth": [2]},
    )
    assert test_metric_names(forest) == ("roc_auc", "balanced_accuracy")
    logistic = _search(LOGISTIC, ["f1"], {"logisticregression__C": [1.0]})
    assert test_metric_names(logistic) == ("f1",)  # a pipeline's last step


def _rows(labels_train, labels_test, seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([labels_train, labels_test])
    x = rng.normal(size=(y.size, 3)) + np.asarray(y, dtype=float)[:, None]
    times = np.datetime64("2010-01-01") + np.arange(y.size) * np.timedelta64(1, "D")
    return x, y, times, times[len(labels_train)]


@pytest.mark.parametrize("labels", [(0, 1), (1, 2), (False, True)])
def test_integer_and_bool_labels_are_classes(labels):
    """Labels of an int or bool target are the classes: the model predicts them."""
    search = _search(LOGISTIC, ["accuracy", "roc_auc"], {"logisticregression__C": [1.0]})
    low, high = labels
    train = np.array([low, high] * 60)
    x, y, times, start = _rows(train, np.array([low, high] * 20))
    result = PartitionSearch(search, test_start=start, save_models=False).run(0, x, y, times)
    assert result.status == "ok", result.reason
    assert set(result.test_scores) == {"accuracy", "roc_auc"}
    assert result.test_scores["accuracy"] > 0.7
    assert result.test_scores["roc_auc"] > 0.7


def test_a_test_period_of_one_class_gives_nan_for_the_scorers_it_breaks():
    """roc_auc is undefined on a test period holding one class: NaN for that metric, the
    partition stays ok and its other metrics are scored."""
    search = _search(LOGISTIC, ["accuracy", "roc_auc"], {"logisticregression__C": [1.0]})
    x, y, times, start = _rows(np.array([0, 1] * 60), np.ones(30, dtype=int))
    result = PartitionSearch(search, test_start=start).run(0, x, y, times)
    assert result.status == "ok", result.reason
    assert math.isnan(result.test_scores["roc_auc"])
    assert 0.7 < result.test_scores["accuracy"] <= 1.0
    assert result.record()["test_scores"]["roc_auc"] is None  # the journal holds it as null


def test_scorer_scores_give_nan_for_a_scorer_that_cannot_score():
    """f1's binary default on three classes raises in scikit-learn: NaN, and the others
    are still scored."""
    from sklearn.linear_model import LogisticRegression

    x, y, _, _ = _rows(np.array([0, 1, 2] * 30), np.array([0]))
    model = LogisticRegression().fit(x, y)
    scores = scorer_scores(["f1", "accuracy", "f1_macro"], model, x, y)
    assert math.isnan(scores["f1"])
    assert scores["accuracy"] == pytest.approx(float((model.predict(x) == y).mean()))
    assert 0.5 < scores["f1_macro"] <= 1.0


def test_bounded_scorers_are_drawn_on_the_unit_interval():
    assert score_limits("test_accuracy") == (0.0, 1.0)
    assert score_limits("roc_auc_ovr") == (0.0, 1.0)
    assert score_limits("f1_macro") == (0.0, 1.0)
    assert score_limits("test_r2") is None
    assert score_limits("neg_log_loss") is None
    assert score_limits("test_rmse") is None
