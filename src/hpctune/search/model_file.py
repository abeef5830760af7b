"""Model files: written with skops, loaded without letting the file run code.

A skops file is a zip of arrays and a JSON description of the objects to rebuild. Loading
rebuilds only types that are trusted: skops' own safe defaults (scikit-learn's estimators,
NumPy and SciPy containers) plus the estimator classes the job spec names. A file that asks
for anything else (``builtins.eval``, ``os.system``, a class the spec never used) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..output.folder import Store
from ..spec import Job
from .estimator import import_estimator


def trusted_types(job: Job) -> list[str]:
    """The estimator classes of the spec, as skops names them (``module.Class``)."""
    names = []
    for path in job.search.estimator:
        cls = import_estimator(path)
        names.append(f"{cls.__module__}.{cls.__qualname__}")
    return names


def load_model_file(path: str | Path, trusted: Iterable[str] = ()) -> Any:
    """Load one skops model file, trusting only skops' defaults and ``trusted``."""
    import skops.io

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no model file {path}")
    allowed = set(trusted)
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelError(f"model file {path} is damaged or not a skops file: {exc}") from None
    refused = sorted(set(untrusted) - allowed)
    if refused:
        raise ModelError(
            f"refusing to load {path}: it asks for types the job does not use: {', '.join(refused)}"
        )
    try:
        return skops.io.load(path, trusted=sorted(set(untrusted)))
    except Exception as exc:
        raise ModelError(f"model file {path} is damaged or not a skops file: {exc}") from None


def model_path(job: Job, index: int) -> Path:
    """Where the model of partition ``index`` is (it exists once the partition is ``ok``)."""
    return Store(job.output_dir).model_path(index)


def load_model(job: Job, index: int, trusted: Iterable[str] = ()) -> Any:
    """The best model of partition ``index`` of ``job``'s results."""
    return load_model_file(model_path(job, index), [*trusted_types(job), *trusted])
