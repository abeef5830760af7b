"""``search.halving``: the settings of a successive-halving search (``search.method: halving``
or ``halving-random``, scikit-learn's ``HalvingGridSearchCV`` / ``HalvingRandomSearchCV``), and
the checks that tie them to the rest of the spec.

A halving search evaluates every candidate on a small share of the resource (training rows, or
an estimator parameter such as ``n_estimators``), keeps the best ``1/factor`` of them, and gives
the survivors ``factor`` times more of the resource, until one iteration is left.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from ..errors import SpecError
from .fields import SpecModel

HALVING_METHODS = ("halving", "halving-random")
"""``search.method`` values that run a successive-halving search."""

GRID_METHODS = ("grid", "halving")
"""``search.method`` values whose candidates are the whole grid of ``search.params``."""

MIN_RESOURCES_WORDS = ("exhaust", "smallest")
"""The words ``search.halving.min_resources`` takes besides a whole number (scikit-learn's)."""


class HalvingSpec(SpecModel):
    """``search.halving``: scikit-learn's ``factor``, ``resource``, ``min_resources``,
    ``max_resources`` and ``aggressive_elimination``, with its defaults."""

    factor: float = Field(default=3, gt=1)
    """Each iteration keeps the best 1/factor of the candidates, with factor x the resource."""
    resource: str = "n_samples"
    """``n_samples`` (training rows), or an integer parameter of the estimator."""
    min_resources: int | float | str = "exhaust"
    """Resource of the first iteration: a whole number, a share of ``max_resources`` (a number
    between 0 and 1: ``0.2`` with ``factor: 5`` ranks every candidate on a fifth of each
    partition's rows, then the best fifth on five times as many (all of them, but for the
    remainder), two iterations whatever the partition's rows),
    ``exhaust`` (as much as lets the last iteration use ``max_resources``) or ``smallest``
    (2 x folds rows; 1 for a parameter)."""
    max_resources: int | str = "auto"
    """The most resource a candidate gets: ``auto`` (the partition's training rows, for
    ``resource: n_samples`` only) or a whole number."""
    aggressive_elimination: bool = False
    """Start again at ``min_resources`` until few enough candidates are left for the resource."""

    @field_validator("factor", mode="before")
    @classmethod
    def _factor(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"must be a number > 1; got {value!r}")
        return value

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z_]\w*$", value):
            raise ValueError(f"must be n_samples or an estimator parameter's name; got {value!r}")
        return value

    @field_validator("min_resources", mode="before")
    @classmethod
    def _min_resources(cls, value: Any) -> Any:
        if isinstance(value, float):
            if not 0 < value < 1:
                raise ValueError(
                    "must be a whole number >= 1, a share of max_resources between 0 and 1, "
                    f"or {' or '.join(MIN_RESOURCES_WORDS)}; got {value!r}"
                )
            return value
        return _whole_or_word(value, MIN_RESOURCES_WORDS)

    @field_validator("max_resources", mode="before")
    @classmethod
    def _max_resources(cls, value: Any) -> Any:
        return _whole_or_word(value, ("auto",))


def halving_defaults(data: Any) -> Any:
    """``search`` as given, with ``halving: {}`` (every default) for a halving method that
    names none, so that ``validate --json`` and the fingerprint show the settings used."""
    halving = isinstance(data, dict) and data.get("method") in HALVING_METHODS
    if halving and data.get("halving") is None:
        return {**data, "halving": {}}
    return data


def _whole_or_word(value: Any, words: tuple[str, ...]) -> Any:
    choices = " or ".join(words)
    if isinstance(value, str) and value in words:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"must be >= 1 or {choices}; got {value!r}")
        return value
    raise ValueError(f"must be a whole number >= 1 or {choices}; got {value!r}")


def check_halving(job: Any) -> None:
    """The checks of a halving search against the rest of the spec, each a
    :class:`~hpctune.errors.SpecError` naming its key. ``job`` is a validated
    :class:`~hpctune.spec.Job`."""
    search, cluster = job.search, job.cluster
    halving = search.halving
    if search.method not in HALVING_METHODS:
        if halving is not None:
            raise SpecError(
                "search.halving",
                f"applies to method halving or halving-random only; method is {search.method}",
            )
        return
    if len(search.scoring) > 1:
        raise SpecError(
            "search.scoring",
            f"method {search.method} ranks candidates on one scorer (scikit-learn's halving "
            f"searches take no other); got {len(search.scoring)}: {', '.join(search.scoring)}",
        )
    settings = halving or HalvingSpec()
    if settings.resource != "n_samples":
        if settings.resource in search.params:
            raise SpecError(
                "search.halving.resource",
                f"{settings.resource} is searched in search.params; the resource is set by "
                "each iteration, not searched",
            )
        if settings.resource in search.fixed:
            raise SpecError(
                "search.halving.resource",
                f"{settings.resource} is set in search.fixed; the resource is set by each "
                "iteration",
            )
        if settings.max_resources == "auto":
            raise SpecError(
                "search.halving.max_resources",
                f"give a whole number for resource {settings.resource} (auto means the "
                "training rows: resource n_samples only)",
            )
    numbers = (settings.min_resources, settings.max_resources)
    if all(isinstance(n, int) for n in numbers) and numbers[0] > numbers[1]:
        raise SpecError(
            "search.halving.min_resources",
            f"{numbers[0]} is above max_resources {numbers[1]}",
        )
    if cluster.granularity == "fit":
        raise SpecError(
            "cluster.granularity",
            f"fit does not apply to method {search.method}: each iteration of a halving "
            "search depends on the one before, so the whole search is one task (use auto "
            "or partition)",
        )
    if cluster.processes is False:
        raise SpecError(
            "cluster.processes",
            f"false does not apply to method {search.method}: a halving search is one task "
            "on a worker process (use auto or true)",
        )
