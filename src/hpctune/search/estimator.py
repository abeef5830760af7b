"""The estimator of a spec: imported, built, and checked once per run (its parameters, every
candidate's values, the scorers), and the size of its search."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import math
from collections.abc import Iterator
from typing import Any

from ..errors import SpecError
from ..spec import GRID_METHODS, SearchSpec
from .boost import constructor_names, follows_sklearn, step_defaults
from .halving import halving_counts, is_halving


def import_estimator(path: str, key: str = "search.estimator") -> type:
    """The scikit-learn estimator class at ``path`` (``module.Class``)."""
    from sklearn.base import BaseEstimator

    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(key, f"cannot import {module_name!r} for {path!r}: {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        close = difflib.get_close_matches(
            attr, [n for n in dir(module) if not n.startswith("_")], 3
        )
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SpecError(key, f"module {module_name!r} has no {attr!r}{hint}") from None
    if not (isinstance(obj, type) and (issubclass(obj, BaseEstimator) or follows_sklearn(obj))):
        raise SpecError(key, f"{path!r} is not a scikit-learn estimator class")
    return obj


def build_estimator(search: SearchSpec) -> Any:
    """One estimator, or a ``make_pipeline`` of several (step names are lower-case class names)."""
    from sklearn.pipeline import make_pipeline

    classes = [import_estimator(path) for path in search.estimator]
    steps = []
    for path, cls in zip(search.estimator, classes, strict=True):
        try:
            steps.append(cls(**step_defaults(cls, _named(search, cls))))
        except Exception as exc:
            raise SpecError("search.estimator", f"cannot create {path}(): {exc}") from None
    return steps[0] if len(steps) == 1 else make_pipeline(*steps)


def _named(search: SearchSpec, cls: type) -> set[str]:
    """The parameters the spec searches or fixes on the step of class ``cls`` (without the
    step prefix)."""
    names = [*search.params, *search.fixed]
    if len(search.estimator) == 1:
        return set(names)
    prefix = f"{cls.__name__.lower()}__"
    return {name[len(prefix) :] for name in names if name.startswith(prefix)}


def check_params(search: SearchSpec, estimator: Any) -> None:
    """Every searched parameter must be one the estimator takes (:func:`check_param_name`)."""
    for name in search.params:
        check_param_name(search, estimator, name, f"search.params.{name}")


def check_param_name(search: SearchSpec, estimator: Any, name: str, key: str) -> None:
    """``name`` must be one of the estimator's ``get_params()``, or a name for a step whose
    constructor takes ``**kwargs`` (LightGBM's and XGBoost's pass any name on to their
    library); else a :class:`SpecError` on ``key`` offering the closest name."""
    known = dict.fromkeys(estimator.get_params(deep=True)) | dict.fromkeys(_unlisted(estimator))
    if name in known or _takes_any_name(estimator, name):
        return
    tunable = [k for k in known if "__" in k] if len(search.estimator) > 1 else list(known)
    close = difflib.get_close_matches(name, tunable, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"parameters: {_clip(', '.join(tunable))}"
    raise SpecError(key, f"not a parameter of {_describe(search)}; {hint}")


def _takes_any_name(estimator: Any, name: str) -> bool:
    steps = getattr(estimator, "named_steps", None)
    if steps is not None:
        step, _, name = name.partition("__")
        if not name or step not in steps:
            return False
        estimator = steps[step]
    init = type(estimator).__init__
    if "__" in name or init is object.__init__:  # object's (*args, **kwargs) takes nothing
        return False
    kinds = (p.kind for p in inspect.signature(init).parameters.values())
    return inspect.Parameter.VAR_KEYWORD in kinds


def _unlisted(estimator: Any) -> list[str]:
    """Parameters of library steps that ``get_params()`` lists only once set (CatBoost's,
    LightGBM's ``verbose``)."""
    steps = getattr(estimator, "steps", None)
    pairs = [(f"{name}__", step) for name, step in steps] if steps else [("", estimator)]
    return [prefix + arg for prefix, step in pairs for arg in constructor_names(type(step))]


def check_scoring(search: SearchSpec) -> None:
    """Every scorer must be one scikit-learn knows, with close names offered for a typo."""
    from sklearn.metrics import get_scorer_names

    names = get_scorer_names()
    for scorer in search.scoring:
        if scorer not in names:
            close = difflib.get_close_matches(scorer, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SpecError("search.scoring", f"unknown scorer {scorer!r}{hint}")


def _describe(search: SearchSpec) -> str:
    names = [p.rpartition(".")[2] for p in search.estimator]
    return names[0] if len(names) == 1 else f"the pipeline {' -> '.join(names)}"


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def candidates(search: SearchSpec) -> list[dict[str, Any]]:
    """The parameter sets the search will try (a random search draws them from its seed)."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    space = param_space(search)
    if search.method in GRID_METHODS:
        return list(ParameterGrid(space))
    return list(ParameterSampler(space, n_iter=n_candidates(search), random_state=search.seed))


def check_candidates(search: SearchSpec, estimator: Any) -> None:
    """Validate every candidate's parameter values once, before any partition is fitted.

    The fits themselves then skip scikit-learn's per-call parameter validation
    (:func:`fast_checks`), which is a large share of the cost of a small fit.
    """
    from sklearn.base import clone

    for candidate in candidates(search):
        refused = invalid_step(clone(estimator).set_params(**candidate))
        if refused is not None:
            exc = refused[1]
            raise SpecError(_param_key(search, exc, candidate), _sentence(exc)) from None


def invalid_step(model: Any) -> tuple[str, Exception] | None:
    """The first step of ``model`` (its name, ``""`` outside a pipeline) whose parameters
    scikit-learn's declared constraints refuse, and the refusal; None when all are valid."""
    from sklearn.utils._param_validation import InvalidParameterError

    for name, step in getattr(model, "steps", [("", model)]):
        validate = getattr(step, "_validate_params", None)
        if validate is None or not hasattr(step, "_parameter_constraints"):
            continue
        try:
            validate()
        except InvalidParameterError as exc:
            return name, exc
    return None


def _param_key(search: SearchSpec, exc: Exception, candidate: dict[str, Any]) -> str:
    text = str(exc)
    for name in candidate:
        if f"'{name.rpartition('__')[2]}' parameter" in text:
            return f"search.params.{name}"
    return "search.params"


def _sentence(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:1].lower() + text[1:]


@contextlib.contextmanager
def fast_checks() -> Iterator[None]:
    """Skip checks already done once for the whole run: parameter values (validated by
    :func:`check_candidates`) and finiteness (rows with NaN or inf are dropped before the fit)."""
    import sklearn

    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        yield


def param_space(search: SearchSpec) -> dict[str, Any]:
    """The grid (lists) or, for a random search, lists and scipy distributions."""
    from scipy import stats

    space: dict[str, Any] = {}
    for name, values in search.params.items():
        if isinstance(values, dict):
            ((kind, (low, high)),) = values.items()
            if kind == "loguniform":
                space[name] = stats.loguniform(low, high)
            elif kind == "uniform":
                space[name] = stats.uniform(low, high - low)
            else:
                space[name] = stats.randint(low, high)
        else:
            space[name] = list(values)
    return space


def n_candidates(search: SearchSpec) -> int:
    """Candidates the search tries: the grid's size, or ``n_iter`` (at most the grid)."""
    sizes = [len(v) if isinstance(v, list) else math.inf for v in search.params.values()]
    grid = math.prod(sizes)
    if search.method in GRID_METHODS:
        return int(grid)
    return int(min(search.n_iter, grid))


def work_counts(
    search: SearchSpec, n_partitions: int, folds: int | None, rows: int | None = None
) -> dict[str, Any]:
    """Candidates, folds and fits of a whole run (refits included), for ``validate``; a halving
    search's fits are estimated for partitions of ``rows`` training rows (``halving``)."""
    candidates = n_candidates(search)
    per_partition = None if folds is None else candidates * folds + 1
    counts: dict[str, Any] = {}
    if is_halving(search):
        counts["halving"] = halving_counts(search, candidates, folds, rows)
        per_partition = counts["halving"]["fits_per_partition"]
    return {
        "method": search.method,
        "candidates": candidates,
        "folds": folds,
        "fits_per_partition": per_partition,
        "fits": None if per_partition is None else per_partition * n_partitions,
        **counts,
    }
