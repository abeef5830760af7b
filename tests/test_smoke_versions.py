"""dask-ml imports private scikit-learn names: this fails first when a dependency moves."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold


def test_pinned_versions():
    assert version("dask-ml") == "2025.1.0"
    assert version("scikit-learn").startswith("1.9.")
    assert version("dask-jobqueue") == "0.9.0"


def test_dask_ml_grid_search_runs_with_explicit_cv_and_error_score():
    import dask_ml.model_selection as dms

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=60)
    search = dms.GridSearchCV(
        Ridge(),
        {"alpha": [0.1, 10.0]},
        cv=KFold(3),
        iid=False,
        error_score="raise",
        scheduler="sync",
    ).fit(x, y)
    assert search.best_params_ == {"alpha": 0.1}
    assert search.cv_results_["mean_test_score"].shape == (2,)
