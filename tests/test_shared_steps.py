"""dask-ml's task keys hash the pipeline steps: a step shared by several candidates is fitted
once per fold and distinct parameter set, where scikit-learn fits it again for every candidate.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec

import hpctune

FOLDS = 3
COMPONENTS = [2, 3]
ALPHAS = [0.1, 1.0, 10.0]


def _search(log: str) -> dict:
    return {
        "estimator": ["tests_support.CountingPCA", "tests_support.CountingRidge"],
        "params": {
            "countingpca__n_components": COMPONENTS,
            "countingpca__log": [log],
            "countingridge__alpha": ALPHAS,
            "countingridge__log": [log],
        },
        "cv": {"kind": "kfold", "splits": FOLDS},
        "min_samples": 20,
    }


def _fits(log) -> Counter:
    return Counter(line.split(" rows=")[0] for line in log.read_text().splitlines())


@pytest.mark.parametrize("granularity", ["partition", "fit"])
def test_pca_is_fitted_once_per_fold_and_n_components(tmp_path, dask_client, granularity):
    cells = 2
    synthetic(cells=cells, steps=200).to_netcdf(tmp_path / "cells.nc")
    log = tmp_path / "fits.log"
    spec = synthetic_spec(tmp_path / "cells.nc", search=_search(str(log)))
    spec["cluster"] = {"granularity": granularity}
    summary = hpctune.run(write_spec(tmp_path, spec), client=dask_client)
    assert list(summary.results.status.values) == ["ok"] * cells
    fits = _fits(log)
    best = Counter(int(n) for n in summary.results.best_countingpca__n_components.values)
    # per cell: one PCA per fold and n_components, one refit of the best
    for n in COMPONENTS:
        assert fits[f"pca n_components={n}"] == cells * FOLDS + best[n]
    # Ridge has a distinct parameter set per candidate: every candidate and fold, and the refit
    assert sum(v for k, v in fits.items() if k.startswith("ridge")) == cells * (
        FOLDS * len(COMPONENTS) * len(ALPHAS) + 1
    )


def test_scikit_learn_fits_the_shared_step_for_every_candidate(tmp_path):
    """The same search in scikit-learn: what the sharing above saves (and a check that the
    counting estimators count)."""
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline
    from tests_support import CountingPCA, CountingRidge

    log = tmp_path / "fits.log"
    ds = synthetic(cells=1, steps=200)
    x = np.stack([ds[v].values[0] for v in ("x1", "x2", "x3")], axis=-1)
    y = ds.y.values[0]
    keep = np.isfinite(y)
    pipe = make_pipeline(CountingPCA(log=str(log)), CountingRidge(log=str(log)))
    grid = {"countingpca__n_components": COMPONENTS, "countingridge__alpha": ALPHAS}
    GridSearchCV(pipe, grid, cv=KFold(FOLDS), error_score="raise").fit(x[keep], y[keep])
    pca = sum(v for k, v in _fits(log).items() if k.startswith("pca"))
    assert pca == FOLDS * len(COMPONENTS) * len(ALPHAS) + 1


def test_the_counting_estimators_give_scikit_learn_results(tmp_path, dask_client):
    """The counting wrappers change nothing: hpctune's best parameters and scores match a
    plain PCA + Ridge search."""
    synthetic(cells=2, steps=200).to_netcdf(tmp_path / "cells.nc")
    plain = synthetic_spec(
        tmp_path / "cells.nc",
        search={
            "estimator": ["sklearn.decomposition.PCA", "sklearn.linear_model.Ridge"],
            "params": {"pca__n_components": COMPONENTS, "ridge__alpha": ALPHAS},
            "cv": {"kind": "kfold", "splits": FOLDS},
            "min_samples": 20,
        },
    )
    counting = synthetic_spec(tmp_path / "cells.nc", search=_search(str(tmp_path / "f.log")))
    counting["output"] = str(tmp_path / "counting")
    a = hpctune.run(write_spec(tmp_path, plain), client=dask_client).results
    b = hpctune.run(write_spec(tmp_path, counting, "c.yaml"), client=dask_client).results
    xr.testing.assert_allclose(a.best_score, b.best_score)
    np.testing.assert_array_equal(
        a.best_pca__n_components.values, b.best_countingpca__n_components.values
    )
