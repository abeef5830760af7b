"""The output folder, now the package :mod:`hpctune.output`; these names stay importable here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .output.dataset import param_kinds, results_dataset
from .output.files import FileLock, io_error, take_lock, write_atomic
from .output.folder import MANIFEST, RESULTS, Store
from .output.journal import HEADER, MAGIC, Journal, read_journal
from .output.record import FINISHED
from .output.status import StatusCounts
from .output.versions import versions

RunLock = FileLock


def count_statuses(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """``{ok, skipped, failed}`` of ``records`` (see :class:`StatusCounts`)."""
    counts = StatusCounts.from_records(records)
    return {"ok": counts.ok, "skipped": counts.skipped, "failed": counts.failed}


__all__ = [
    "FINISHED",
    "HEADER",
    "MAGIC",
    "MANIFEST",
    "RESULTS",
    "FileLock",
    "Journal",
    "RunLock",
    "StatusCounts",
    "Store",
    "count_statuses",
    "io_error",
    "param_kinds",
    "read_journal",
    "results_dataset",
    "take_lock",
    "versions",
    "write_atomic",
]
