"""How many partitions are ok, skipped, failed and pending: the one tally of statuses, counted
from the journals (a run, ``status``: :meth:`hpctune.output.latest.LatestRecords.counts`) or
from results.nc (``merge``, the report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

STATUSES = ("ok", "skipped", "failed", "pending")
"""Every status a partition has in results.nc, in the order they are shown."""


@dataclass(frozen=True)
class StatusCounts:
    """Partitions by status. ``total`` and ``pending`` are None when the partition count is
    unknown (records read without a manifest and without the data)."""

    ok: int = 0
    skipped: int = 0
    failed: int = 0
    pending: int | None = 0
    total: int | None = None

    @classmethod
    def from_results(cls, results: Any) -> StatusCounts:
        """Count the ``status`` variable of results.nc (every row: its total is its size)."""
        status = np.asarray(results["status"].values).astype(str)
        found = {name: int((status == name).sum()) for name in STATUSES}
        return cls(**found, total=int(status.size))

    @property
    def done(self) -> int:
        """Partitions with a record: ok, skipped or failed."""
        return self.ok + self.skipped + self.failed

    def count(self, name: str) -> int:
        """The count of status ``name`` (0 when unknown)."""
        return int(getattr(self, name) or 0)

    def share(self, name: str) -> float | None:
        """The share of status ``name`` in the total; None without a total."""
        return self.count(name) / self.total if self.total else None

    def by_status(self) -> dict[str, int | None]:
        """``{ok, skipped, failed, pending}``, in that order."""
        return {name: getattr(self, name) for name in STATUSES}

    def to_dict(self) -> dict[str, int | None]:
        """``{total, ok, skipped, failed, pending}``: what ``status --json`` prints."""
        return {"total": self.total, **self.by_status()}

    def text(self) -> str:
        """``3 ok, 0 skipped, 1 failed, 0 pending``."""
        return ", ".join(f"{count} {name}" for name, count in self.by_status().items())
