"""The search of one partition: the estimator and its checks (``estimator``), the cv kinds
(``cv``), one partition's search (``partition``), the same in a child process with a timeout
(``sandbox``), model files (``model_file``), and the fixed arguments (``fixed``).
"""

from __future__ import annotations

from ..output.record import TEST_METRICS, PartitionResult
from .cv import CV_KINDS, CVKind, make_cv, n_folds
from .estimator import (
    build_estimator,
    candidates,
    check_candidates,
    check_params,
    check_scoring,
    fast_checks,
    import_estimator,
    n_candidates,
    param_space,
    work_counts,
)
from .fixed import apply_fixed, check_fixed
from .partition import (
    PartitionRows,
    PartitionSearch,
    SearchTimeout,
    describe_exception,
    holdout_scores,
    make_search,
    rank_nan_last,
    select_rows,
)

__all__ = [
    "CV_KINDS",
    "TEST_METRICS",
    "CVKind",
    "PartitionResult",
    "PartitionRows",
    "PartitionSearch",
    "SearchTimeout",
    "apply_fixed",
    "build_estimator",
    "candidates",
    "check_candidates",
    "check_fixed",
    "check_params",
    "check_scoring",
    "describe_exception",
    "fast_checks",
    "holdout_scores",
    "import_estimator",
    "make_cv",
    "make_search",
    "n_candidates",
    "n_folds",
    "param_space",
    "rank_nan_last",
    "select_rows",
    "work_counts",
]
