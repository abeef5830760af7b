"""Fixed constructor arguments (``search.fixed``): values set on the estimator before every
search and never searched, so they are no candidates' parameters and no ``best_*`` variables.

They are checked once per run like the searched parameters (names against the estimator,
values against its constraints): the fits skip scikit-learn's own validation
(:func:`~hpctune.search.estimator.fast_checks`).
"""

from __future__ import annotations

from typing import Any

from ..errors import SpecError
from ..spec import SearchSpec
from .estimator import check_param_name, invalid_step


def apply_fixed(search: SearchSpec, estimator: Any) -> Any:
    """``estimator`` with the spec's fixed arguments set (in place, and returned)."""
    if search.fixed:
        estimator.set_params(**search.fixed)
    return estimator


def check_fixed(search: SearchSpec, estimator: Any) -> None:
    """Check the fixed arguments' names and values, and set them on ``estimator`` (so that
    the candidates checked next are checked with them)."""
    for name in search.fixed:
        check_param_name(search, estimator, name, f"search.fixed.{name}")
    try:
        apply_fixed(search, estimator)
    except Exception as exc:  # a **kwargs estimator's own set_params may refuse a value
        raise SpecError("search.fixed", _sentence(exc)) from None
    refused = invalid_step(estimator)
    if refused is not None:
        step, exc = refused
        raise SpecError(_key(search, step, exc), _sentence(exc)) from None


def _key(search: SearchSpec, step: str, exc: Exception) -> str:
    prefix = f"{step}__" if step else ""
    for name in search.fixed:
        if name.startswith(prefix) and f"'{name[len(prefix) :]}' parameter" in str(exc):
            return f"search.fixed.{name}"
    return "search.fixed"


def _sentence(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:1].lower() + text[1:]
