"""Progress of a run: a live bar on a terminal, plain lines at a steady interval in a batch log,
and a summary table at the end.

On a terminal the bar is redrawn in place (carriage return) at most five times a second. In a
batch log (stderr is not a terminal) a plain line is written every ``interval`` seconds
(default 30, or ``HPCTUNE_PROGRESS_INTERVAL``) with the same counts, and never a carriage
return or a colour code, so that ``tail -f slurm-123.out`` and ``grep`` read it well.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from .units import clock

#: Seconds between two plain lines in a batch log, unless ``interval`` or the variable says.
LOG_INTERVAL = 30.0
INTERVAL_VARIABLE = "HPCTUNE_PROGRESS_INTERVAL"

MIN_RATE_SECONDS = 1.0
"""No rate (and no ETA) is shown before work has gone on this long: it would be noise."""


@dataclass
class Counts:
    """The live tally of one run, updated as each partition finishes (not a count of the
    journals: that is the store's), from which the bar shows its rate and ETA."""

    total: int
    resumed: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.ok + self.skipped + self.failed

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.resumed - self.done)

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self) -> float:
        rate = self.rate()
        return self.remaining / rate if rate > 0 else math.inf


def format_rate(per_second: float) -> str:
    """Partitions per second, minute or hour, whichever reads best."""
    if per_second <= 0 or not math.isfinite(per_second):
        return "-"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    if per_second * 60 >= 1:
        return f"{per_second * 60:.1f}/min"
    return f"{per_second * 3600:.1f}/h"


def _log_interval() -> float:
    text = os.environ.get(INTERVAL_VARIABLE, "")
    try:
        value = float(text)
    except ValueError:
        return LOG_INTERVAL
    return value if value > 0 else LOG_INTERVAL


class Progress:
    """Reports :class:`Counts`; silent when ``enabled`` is false (``--json``, ``--quiet``).

    The rate and the ETA count from the first :meth:`update`, which comes once the cluster is
    up: the time spent starting workers does not make the partitions look slower than they are.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        enabled: bool = True,
        interval: float | None = None,
        color: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval if interval is not None else (0.2 if self.tty else _log_interval())
        if color is None:
            color = self.tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        self.color = bool(color and self.tty)
        self._last = -math.inf
        self._drawn = False
        self._clock: tuple[float, int] | None = None
        """(time, partitions done) at the first update: the rate counts from there."""

    # ------------------------------------------------------------------ numbers

    def rate(self, counts: Counts) -> float:
        """Partitions per second since work began (see the class docstring)."""
        if self._clock is None:
            return counts.rate()
        start, done = self._clock
        elapsed = time.monotonic() - start
        return (counts.done - done) / elapsed if elapsed >= MIN_RATE_SECONDS else 0.0

    def eta_seconds(self, counts: Counts) -> float:
        if counts.remaining == 0:
            return 0.0
        rate = self.rate(counts)
        return counts.remaining / rate if rate > 0 else math.inf

    def line(self, counts: Counts) -> str:
        finished = counts.resumed + counts.done
        share = finished / counts.total if counts.total else 1.0
        failed = f"failed {counts.failed}"
        if self.color and counts.failed:
            failed = f"\x1b[31m{failed}\x1b[0m"
        return (
            f"{finished}/{counts.total} partitions ({share:.0%}): ok {counts.ok}, "
            f"skipped {counts.skipped}, {failed}, resumed {counts.resumed}; "
            f"{format_rate(self.rate(counts))}, ETA {clock(self.eta_seconds(counts))}"
        )

    def bar(self, counts: Counts, width: int) -> str:
        finished = counts.resumed + counts.done
        filled = int(width * finished / counts.total) if counts.total else width
        return "#" * filled + "." * (width - filled)

    # ------------------------------------------------------------------ output

    def update(self, counts: Counts, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._clock is None:
            self._clock = (now, counts.done)
        if not force and now - self._last < self.interval:
            return
        self._last = now
        text = self.line(counts)
        if self.tty:
            columns = shutil.get_terminal_size((100, 24)).columns
            width = max(10, min(30, columns - len(self._plain(text)) - 4))
            self.stream.write(f"\r[{self.bar(counts, width)}] {text}\x1b[K")
            self._drawn = True
        else:
            elapsed = clock(now - self._clock[0])
            self.stream.write(f"progress [{elapsed}]: {text}\n")
        self.stream.flush()

    @staticmethod
    def _plain(text: str) -> str:
        return text.replace("\x1b[31m", "").replace("\x1b[0m", "")

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def summary(self, summary: Any) -> None:
        """Write the end-of-run table (:func:`summary_table`) of a ``RunSummary``."""
        if not self.enabled:
            return
        self.close()
        self.stream.write(summary_table(summary) + "\n")
        self.stream.flush()


# --------------------------------------------------------------------------- summary table


def fit_time_text(results: Any) -> str | None:
    """Mean, p95 and max of the searches' ``fit_seconds`` in results, and their core-hours."""
    import numpy as np

    if results is None or "fit_seconds" not in results:
        return None
    fit = np.asarray(results["fit_seconds"].values, dtype=float)
    fit = fit[np.isfinite(fit)]
    if not fit.size:
        return None
    return (
        f"mean {fit.mean():.2f} s, p95 {np.percentile(fit, 95):.2f} s, max {fit.max():.2f} s "
        f"per partition; {fit.sum() / 3600:.3g} core-hours in all"
    )


def summary_table(summary: Any) -> str:
    """A plain-text table of a finished run: statuses, times, where, and why partitions failed.

    ``summary`` is an :class:`hpctune.execution.driver.RunSummary`; fit times and failure
    reasons come from its results (a whole run), else they are left out.
    """
    import numpy as np

    total = summary.total
    rows: list[tuple[str, str]] = []

    def share(count: int) -> str:
        return f"{count / total:6.1%}" if total else "     -"

    statuses = [
        ("ok", summary.ok),
        ("skipped", summary.skipped),
        ("failed", summary.failed),
        ("pending", summary.pending),
    ]
    width = max(len(str(total)), 5)
    lines = [f"{summary.name}: summary", f"  {'status':<10} {'count':>{width}}  share"]
    for name, count in statuses:
        lines.append(f"  {name:<10} {count:>{width}}  {share(count)}")
    resumed = f"  ({summary.resumed} done by earlier runs)" if summary.resumed else ""
    lines.append(f"  {'total':<10} {total:>{width}}{resumed}")
    computed = summary.ok + summary.skipped + summary.failed - summary.resumed
    rate = computed / summary.seconds if summary.seconds > 0 and computed > 0 else 0.0
    rows.append(("wall time", f"{clock(summary.seconds)} ({format_rate(rate)})"))
    results = getattr(summary, "results", None)
    fit = fit_time_text(results)
    if fit:
        rows.append(("fit time", fit))
    if summary.cluster:
        how = {"partition": "; a task computes whole searches", "fit": "; a task per fit"}.get(
            summary.granularity, ""
        )
        rows.append(("cluster", summary.cluster + how))
    rows.append(("output", str(summary.output)))
    if summary.stopped_by:
        rows.append(("stopped", f"by {summary.stopped_by}; run the same command to resume"))
    if results is not None and "status" in results and "reason" in results:
        status = np.asarray(results["status"].values).astype(str)
        reasons = np.asarray(results["reason"].values).astype(str)
        failed = Counter(reasons[status == "failed"])
        for reason, count in failed.most_common(3):
            clipped = reason if len(reason) <= 100 else reason[:97] + "..."
            rows.append(("failure", f"{count} x {clipped}"))
        if len(failed) > 3:
            rows.append(("failure", f"... and {len(failed) - 3} other reasons (see results.nc)"))
    lines.extend(f"  {key:<10} {value}" for key, value in rows)
    return "\n".join(lines)
