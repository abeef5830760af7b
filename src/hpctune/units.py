"""Durations and sizes, read and written the way batch systems and people read them: one
definition of each, shared by the spec, the job scripts, the estimate and the progress line."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

WALLTIME_PATTERN = re.compile(
    r"^(?:(?P<days>\d+)-(?P<day_hours>\d+)(?::(?P<day_minutes>\d+)(?::(?P<day_seconds>\d+))?)?"
    r"|(?P<first>\d+)(?::(?P<second>\d+)(?::(?P<third>\d+))?)?)$"
)
"""The forms ``sbatch --time`` reads: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``."""
MEMORY_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
MEMORY_UNITS = {"": 2**30, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_walltime(value: Any) -> int:
    """Seconds from a walltime in any form ``sbatch --time`` reads, with its meaning: ``M``
    (minutes; also a plain integer), ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M`` and ``D-H:M:S``.

    The first field may be any size (``90`` or ``90:00`` is 90 minutes, ``48:00:00`` two days);
    the minutes and seconds after it must be below 60, as a typo such as ``10:75:00`` is more
    likely than a meaning.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)  # a plain integer: minutes, as sbatch --time=90 reads it
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError(f'must be a walltime such as "02:00:00" or "1-12:00:00"; got {value!r}')
    match = WALLTIME_PATTERN.match(text)
    if not match:
        raise ValueError(
            "must be minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S, as sbatch --time reads it "
            f'(e.g. "02:00:00"); got {value!r}'
        )
    field = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if "days" in field:
        days, hours = field["days"], field["day_hours"]
        minutes, seconds = field.get("day_minutes", 0), field.get("day_seconds", 0)
        later = [minutes, seconds]
    elif "third" in field:  # H:M:S
        days, hours, minutes, seconds = 0, field["first"], field["second"], field["third"]
        later = [minutes, seconds]
    else:  # M or M:S
        days, hours, minutes, seconds = 0, 0, field["first"], field.get("second", 0)
        later = [seconds]
    if any(number >= 60 for number in later):
        raise ValueError(
            f"minutes and seconds after the first field must be below 60; got {value!r}"
        )
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise ValueError(f"must be longer than zero; got {value!r}")
    return total


def duration(seconds: int) -> str:
    """``HH:MM:SS``, or ``D-HH:MM:SS`` from a day on: read back as the same seconds."""
    minutes, secs = divmod(int(seconds), 60)
    hours, mins = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = f"{hours:02d}:{mins:02d}:{secs:02d}"
    return f"{days}-{text}" if days else text


def parse_memory(value: Any) -> int:
    """Bytes from a number of GiB or a size such as ``120GB``, ``500M`` or ``1.5TiB``.

    Units are powers of two, as SLURM and PBS count them: ``G``, ``GB`` and ``GiB`` all mean 2**30.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a size such as 120GB or a number of GiB; got {value!r}")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = MEMORY_PATTERN.match(str(value))
        if not match:
            raise ValueError(
                f"must be a size such as 120GB, 500MB or a number of GiB; got {value!r}"
            )
        number, unit = float(match.group(1)), match.group(2).upper()
    size = int(number * MEMORY_UNITS[unit])
    if size < 2**20:
        raise ValueError(f"must be at least 1 MiB; got {value!r}")
    return size


def hms(seconds: float) -> str:
    """``HH:MM:SS`` with as many hours as needed (PBS ``walltime``, dask-jobqueue, estimates)."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def clock(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` from an hour on; ``--:--`` when unknown (the progress line)."""
    if not math.isfinite(seconds):
        return "--:--"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def size_text(size: float) -> str:
    """Bytes for a person: ``512 B``, ``1.5 GiB``."""
    if size < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"


def whole_size(size: int, units: Sequence[tuple[str, int]]) -> tuple[int, str]:
    """``size`` in the largest of ``units`` (name, factor; largest first) that divides it
    exactly; else in the smallest, rounded up (a scheduler's memory request never shrinks)."""
    for unit, factor in units:
        if size % factor == 0:
            return size // factor, unit
    unit, factor = units[-1]
    return -(-size // factor), unit
