"""The output folder, now the package :mod:`hpctune.output`; these names stay importable here."""

from __future__ import annotations

from .output.dataset import param_kinds, results_dataset
from .output.files import FileLock, io_error, take_lock, write_atomic
from .output.folder import MANIFEST, RESULTS, Store
from .output.journal import HEADER, MAGIC, Journal, read_journal
from .output.record import FINISHED
from .output.status import StatusCounts
from .output.versions import versions

__all__ = [
    "FINISHED",
    "HEADER",
    "MAGIC",
    "MANIFEST",
    "RESULTS",
    "FileLock",
    "Journal",
    "StatusCounts",
    "Store",
    "io_error",
    "param_kinds",
    "read_journal",
    "results_dataset",
    "take_lock",
    "versions",
    "write_atomic",
]
