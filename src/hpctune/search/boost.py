"""Gradient-boosting libraries beyond scikit-learn (LightGBM, XGBoost, CatBoost), used through
their scikit-learn APIs: the types their model files hold, reviewed once here, and the
constructor arguments that keep each fit to its worker slot and its chatter off hpctune's
output.

**Model files.** A fitted LightGBM, XGBoost or CatBoost estimator is written with skops like
any other; its file names, besides the estimator class the spec names, only the library's own
model object, whose state is the library's native model format (data, not code):

- ``lightgbm.basic.Booster``: its state is LightGBM's model text (``model_to_string``), read
  back by ``Booster.__setstate__`` with ``LGBM_BoosterLoadModelFromString``.
  ``collections.OrderedDict`` appears as a type only, the ``default_factory`` of the empty
  ``best_score`` mappings.
- ``xgboost.core.Booster``: its state is XGBoost's serialised model (UBJSON bytes), read back
  by ``Booster.__setstate__`` with ``XGBoosterUnserializeFromBuffer``.
- CatBoost's estimators hold their model as bytes in their own state (``__setstate__`` loads
  it from memory): nothing besides the estimator class.

Loading rebuilds these types and nothing else (:mod:`hpctune.search.model_file`): no function
or class the file names runs, only the libraries' own readers of their own formats. A library's
types are trusted only for a job whose spec names an estimator of that library.

**Threads.** Every fit is one task in one worker slot (one thread of a worker), so a library
estimator gets one thread (``n_jobs=1``, CatBoost's ``thread_count=1``) where the spec does not
set it: LightGBM's default is one OpenMP thread per physical core, whatever
``OMP_NUM_THREADS`` says, in every worker at once. **Output.** LightGBM gets ``verbose=-1``
(no ``[LightGBM] [Info]`` lines), CatBoost ``verbose=False`` and ``allow_writing_files=False``
(no ``catboost_info/`` folder in the working directory) where the spec does not set them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Default:
    """A constructor argument hpctune sets unless the spec names it or one of ``aliases`` (the
    library's other names for the same setting, which would conflict with it)."""

    name: str
    value: Any
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Library:
    """What hpctune knows of one library: the types its model files hold besides the
    estimator class (reviewed: see the module's docstring) and its constructor defaults."""

    trusted: tuple[str, ...]
    defaults: tuple[Default, ...]


LIBRARIES: dict[str, Library] = {
    "lightgbm": Library(
        trusted=("lightgbm.basic.Booster", "collections.OrderedDict"),
        defaults=(
            Default("n_jobs", 1, ("num_threads", "num_thread", "nthread", "nthreads")),
            Default("verbose", -1, ("verbosity",)),
        ),
    ),
    "xgboost": Library(
        trusted=("xgboost.core.Booster",),
        defaults=(Default("n_jobs", 1, ("nthread",)),),
    ),
    "catboost": Library(
        trusted=(),
        defaults=(
            Default("thread_count", 1),
            Default("verbose", False, ("logging_level", "verbose_eval", "silent")),
            Default("allow_writing_files", False, ("train_dir",)),
        ),
    ),
}
"""The libraries by top-level package name."""


def library_of(cls: type) -> Library | None:
    """The library an estimator class belongs to, if it is one of :data:`LIBRARIES`."""
    return LIBRARIES.get(cls.__module__.partition(".")[0])


def follows_sklearn(cls: type) -> bool:
    """An estimator class of one of :data:`LIBRARIES` with scikit-learn's estimator API but
    not its base class (CatBoost's)."""
    methods = ("fit", "predict", "get_params", "set_params")
    return library_of(cls) is not None and all(callable(getattr(cls, m, None)) for m in methods)


def library_types(classes: Iterable[type]) -> list[str]:
    """The reviewed types the model files of these estimator classes may hold besides the
    classes themselves."""
    names: list[str] = []
    for cls in classes:
        library = library_of(cls)
        if library is not None:
            names.extend(t for t in library.trusted if t not in names)
    return names


def step_defaults(cls: type, given: Collection[str]) -> dict[str, Any]:
    """The constructor arguments hpctune sets on a step of class ``cls``: its library's
    defaults whose name and aliases are all absent from ``given`` (the names the spec sets
    for that step)."""
    library = library_of(cls)
    if library is None:
        return {}
    return {
        d.name: d.value
        for d in library.defaults
        if d.name not in given and not any(a in given for a in d.aliases)
    }


def constructor_names(cls: type) -> list[str]:
    """Arguments a library estimator takes that ``get_params()`` may not list: the named
    arguments of ``cls.__init__`` (CatBoost's ``get_params()`` lists only those set, so a
    search of ``depth`` is checked against these) and the library's defaults and their aliases
    (LightGBM takes ``verbose`` as one of its ``**kwargs``)."""
    import inspect

    library = library_of(cls)
    if library is None:
        return []
    names = [name for d in library.defaults for name in (d.name, *d.aliases)]
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return names
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        *(p.name for p in signature.parameters.values() if p.kind in kinds and p.name != "self"),
        *names,
    ]
