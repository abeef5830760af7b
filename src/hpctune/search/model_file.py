"""Models: written with skops (into model packs, :mod:`hpctune.output.packs`), loaded
without letting the bytes run code.

A skops model is a zip of arrays and a JSON description of the objects to rebuild. Loading
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
from ..output.packs import ModelLocation
from ..spec import Job
from .boost import library_types
from .estimator import import_estimator


def dump_model(model: Any) -> bytes:
    """``model`` as skops bytes: what ``skops.io.dumps`` writes, with the JSON description
    written without indentation. skops indents it, which makes Python use its pure-Python
    JSON encoder: for a small model (a Ridge) that was about half the dump's time (0.28 ms), paid
    once per partition. The file is the same skops format, read by ``skops.io.loads``
    (``tests/test_models.py`` compares it with skops' own dump). It uses skops' private
    ``SaveContext`` and ``get_state``; where a skops release moves them, skops' ``dumps``."""
    import io
    import json
    import zipfile

    import skops
    import skops.io

    try:
        from skops.io._utils import SaveContext, get_state
    except ImportError:
        return skops.io.dumps(model)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        context = SaveContext(zip_file=archive)
        state = get_state(model, context)
        context.clear_memo()
        state["protocol"] = context.protocol
        state["_skops_version"] = skops.__version__
        archive.writestr("schema.json", json.dumps(state, separators=(",", ":")))
    return buffer.getvalue()


def trusted_types(job: Job) -> list[str]:
    """The estimator classes of the spec, as skops names them (``module.Class``), and the
    reviewed model types of their libraries (:func:`hpctune.search.boost.library_types`)."""
    classes = [import_estimator(path) for path in job.search.estimator]
    names = [f"{cls.__module__}.{cls.__qualname__}" for cls in classes]
    return [*names, *library_types(classes)]


def check_model(data: bytes, where: object, trusted: Iterable[str] = ()) -> list[str]:
    """The types beyond skops' defaults that the model ``data`` (skops bytes, from ``where``:
    a file, or a place in a model pack) asks for, read from its description without rebuilding
    anything; refused unless all are in ``trusted``."""
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except Exception as exc:
        raise ModelError(f"model {where} is damaged or not a skops file: {exc}") from None
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        listed = ", ".join(refused)
        raise UntrustedModelError(
            f"refusing to load {where}: it asks for types the job does not use: {listed} "
            "(nothing in the file was run); once you have read what they do when rebuilt and "
            "trust them, pass "
            + " ".join(f"--trust {name}" for name in refused)
            + f" to hpctune predict, or trusted={refused!r} to hpctune.load_model"
        )
    return sorted(set(untrusted))


def load_model_bytes(data: bytes, where: object, trusted: Iterable[str] = ()) -> Any:
    """Load one model from its skops bytes, trusting only skops' defaults and ``trusted``."""
    import skops.io

    asked = check_model(data, where, trusted)
    try:
        return skops.io.loads(data, trusted=asked)
    except Exception as exc:
        raise ModelError(f"model {where} is damaged or not a skops file: {exc}") from None


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise ModelError(f"no model file {path}") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None


def check_model_file(path: str | Path, trusted: Iterable[str] = ()) -> list[str]:
    """:func:`check_model` of the skops file at ``path``."""
    return check_model(_file_bytes(Path(path)), Path(path), trusted)


def load_model_file(path: str | Path, trusted: Iterable[str] = ()) -> Any:
    """Load one skops model file, trusting only skops' defaults and ``trusted``."""
    return load_model_bytes(_file_bytes(Path(path)), Path(path), trusted)


def model_location(job: Job, index: int) -> ModelLocation:
    """Where the model of partition ``index`` is; a :class:`ModelError` when it has none
    (not finished ``ok``)."""
    store = Store(job.output_dir)
    where = store.model_location(index)
    if where is None:
        raise ModelError(f"partition {index} of {store.root} has no model (it is not finished ok)")
    return where


def load_model(job: Job, index: int, trusted: Iterable[str] = ()) -> Any:
    """The best model of partition ``index`` of ``job``'s results."""
    where = model_location(job, index)
    data = Store(job.output_dir).read_model(where)
    return load_model_bytes(data, where, [*trusted_types(job), *trusted])
