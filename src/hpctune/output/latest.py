"""The latest record of each partition, over all journals, without holding the records.

A million partitions give a million journal records (some 350 bytes of JSON each, ten times
that as Python objects). Resuming needs only which partitions finished, the counts only their
statuses, and results.nc one column per field. So the journals are read twice, a block at a
time: a first scan keeps, per record, its partition and status (9 bytes) and decides which
record of each partition wins; a second scan yields the winners one at a time, for whoever fills
columns from them (:func:`hpctune.output.dataset.results_dataset`). The second scan reads of each
journal only the records the first one counted: a journal may grow in between (a worker still
appending), and its new records would otherwise shift the place of every later journal's.

The rule of which record wins: journals are read oldest first (by modification time) and, within
one, in order; the latest record of a partition wins, except that a finished record (``ok``,
``skipped``) is never replaced by a later failure of the same partition.
"""

from __future__ import annotations

import contextlib
import itertools
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .journal import scan_journal
from .record import FINISHED
from .status import StatusCounts

CODES = {"ok": 0, "skipped": 1, "failed": 2}
"""Status codes of :attr:`LatestRecords.status`; -1 is a partition without a record."""

NO_RECORD = -1


class LatestRecords:
    """Which record of each partition wins, and its status, from one scan of ``journals``."""

    def __init__(self, journals: list[Path]) -> None:
        self.journals = journals
        indices = array("q")
        codes = array("b")
        self._lengths: list[int] = []  # records of each journal in the first scan
        for path in journals:
            before = len(indices)
            for record in scan_journal(path):
                indices.append(int(record["index"]))
                codes.append(CODES.get(record["status"], len(CODES)))
            self._lengths.append(len(indices) - before)
        index = np.frombuffer(indices, dtype=np.int64) if indices else np.zeros(0, np.int64)
        code = np.frombuffer(codes, dtype=np.int8) if codes else np.zeros(0, np.int8)
        size = int(index.max()) + 1 if index.size else 0
        # the winner of a partition: its latest finished record, else its latest record
        rank = np.arange(index.size, dtype=np.int64) + np.where(
            np.isin(code, [CODES[s] for s in FINISHED]), index.size, 0
        )
        best = np.full(size, -1, dtype=np.int64)
        np.maximum.at(best, index, rank)
        self._winner = np.zeros(index.size, dtype=bool)
        chosen = best[best >= 0]
        self._winner[np.where(chosen >= index.size, chosen - index.size, chosen)] = True
        self.status = np.full(size, NO_RECORD, dtype=np.int8)
        self.status[index[self._winner]] = code[self._winner]
        """Status code (:data:`CODES`) of each partition up to the highest recorded."""

    @classmethod
    def of_folder(cls, parts: Path) -> LatestRecords:
        """The journals of ``parts`` (``<output>/parts``), oldest first."""
        if not parts.is_dir():
            return cls([])
        return cls(sorted(parts.glob("*.log"), key=lambda p: p.stat().st_mtime_ns))

    def __len__(self) -> int:
        """Partitions with a record."""
        return int((self.status != NO_RECORD).sum())

    def records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index, record)`` of each partition's winning record, in journal order (of each
        journal, only the records the first scan saw)."""
        position = 0
        for path, length in zip(self.journals, self._lengths, strict=True):
            with contextlib.closing(scan_journal(path)) as scan:
                for seen, record in enumerate(itertools.islice(scan, length)):
                    if self._winner[position + seen]:
                        yield int(record["index"]), record
            position += length

    def finished(self, size: int | None = None) -> np.ndarray:
        """Boolean mask of partitions ``ok`` or ``skipped`` (length ``size``, or up to the
        highest recorded): what a rerun does not compute again."""
        n = self.status.size if size is None else size
        mask = np.zeros(n, dtype=bool)
        known = min(n, self.status.size)
        mask[:known] = np.isin(self.status[:known], [CODES[s] for s in FINISHED])
        return mask

    def counts(self, indices: np.ndarray | None = None, total: int | None = None) -> StatusCounts:
        """The statuses of the partitions ``indices`` (default: every recorded one)."""
        codes = self.status if indices is None else self._codes(indices)
        found = {name: int((codes == code).sum()) for name, code in CODES.items()}
        done = sum(found.values())
        pending = None if total is None else max(0, int(total) - done)
        return StatusCounts(**found, pending=pending, total=total)

    def _codes(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        inside = indices < self.status.size
        return np.where(inside, self.status[np.where(inside, indices, 0)], NO_RECORD)
