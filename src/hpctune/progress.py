"""Progress of a run: a live line on a terminal, plain lines at a steady interval in a batch log."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Counts:
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


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Reports :class:`Counts`; silent when ``enabled`` is false (``--json``, ``--quiet``)."""

    def __init__(
        self, stream: TextIO | None = None, enabled: bool = True, interval: float | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval if interval is not None else (0.2 if self.tty else 30.0)
        self._last = 0.0
        self._drawn = False

    def line(self, counts: Counts) -> str:
        finished = counts.resumed + counts.done
        share = finished / counts.total if counts.total else 1.0
        rate = counts.rate()
        return (
            f"{finished}/{counts.total} partitions ({share:.0%}): ok {counts.ok}, "
            f"skipped {counts.skipped}, failed {counts.failed}, resumed {counts.resumed}; "
            f"{rate:.1f}/s, ETA {format_seconds(counts.eta_seconds())}"
        )

    def update(self, counts: Counts, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        text = self.line(counts)
        if self.tty:
            width = 30
            finished = counts.resumed + counts.done
            filled = int(width * finished / counts.total) if counts.total else width
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r[{bar}] {text}\x1b[K")
            self._drawn = True
        else:
            self.stream.write(f"progress: {text}\n")
        self.stream.flush()

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
