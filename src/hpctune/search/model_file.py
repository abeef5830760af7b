"""Model files: written with skops, loaded without letting the file run code.

A skops file is a zip of arrays and a JSON description of the objects to rebuild. Loading
rebuilds only types that are trusted: skops' own safe defaults (scikit-learn's estimators,
NumPy and SciPy containers) plus the estimator classes the job spec names and, for LightGBM,
XGBoost and CatBoost estimators, the library's own model types reviewed in
:mod:`hpctune.search.boost`. A file that asks for anything else (``builtins.eval``,
``os.system``, a class the spec never used) is refused, naming the types and how to trust them
(``hpctune predict --trust TYPE``, ``hpctune.load_model(..., trusted=[TYPE])``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ModelError, UntrustedModelError
from ..output.folder import Store
from ..spec import Job
from .boost import library_types
from .estimator import import_estimator


def trusted_types(job: Job) -> list[str]:
    """The estimator classes of the spec, as skops names them (``module.Class``), and the
    reviewed model types of their libraries (:func:`hpctune.search.boost.library_types`)."""
    classes = [import_estimator(path) for path in job.search.estimator]
    names = [f"{cls.__module__}.{cls.__qualname__}" for cls in classes]
    return [*names, *library_types(classes)]


def check_model_file(path: str | Path, trusted: Iterable[str] = ()) -> list[str]:
    """The types beyond skops' defaults that the model file at ``path`` asks for, read from
    its description without rebuilding anything; refused unless all are in ``trusted``."""
    import skops.io

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no model file {path}")
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelError(f"model file {path} is damaged or not a skops file: {exc}") from None
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        listed = ", ".join(refused)
        raise UntrustedModelError(
            f"refusing to load {path}: it asks for types the job does not use: {listed} "
            "(nothing in the file was run); once you have read what they do when rebuilt and "
            "trust them, pass "
            + " ".join(f"--trust {name}" for name in refused)
            + f" to hpctune predict, or trusted={refused!r} to hpctune.load_model"
        )
    return sorted(set(untrusted))


def load_model_file(path: str | Path, trusted: Iterable[str] = ()) -> Any:
    """Load one skops model file, trusting only skops' defaults and ``trusted``."""
    import skops.io

    asked = check_model_file(path, trusted)
    try:
        return skops.io.load(Path(path), trusted=asked)
    except Exception as exc:
        raise ModelError(f"model file {path} is damaged or not a skops file: {exc}") from None


def model_path(job: Job, index: int) -> Path:
    """Where the model of partition ``index`` is (it exists once the partition is ``ok``)."""
    return Store(job.output_dir).model_path(index)


def load_model(job: Job, index: int, trusted: Iterable[str] = ()) -> Any:
    """The best model of partition ``index`` of ``job``'s results."""
    return load_model_file(model_path(job, index), [*trusted_types(job), *trusted])
