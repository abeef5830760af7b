"""Which part of the data a job trains on: ``data.train``, a window in time, and
``data.where``, the cells.

The window narrows the training period only: the test period stays what ``data.test`` says,
inside the window or not, so a model trained on 2010-2015 can be scored on 2016 on. Cells
outside ``data.where`` keep their place in results.nc, ``skipped`` with that reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from .fields import SpecModel, check_line


def parse_date(value: Any, *, keep_day: bool = False) -> dt.date:
    """A YAML date, datetime or ISO text as a datetime; with ``keep_day``, a value written
    as a day alone (``2015-12-31``) stays a :class:`datetime.date`, so that it can mean the
    whole day."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return value if keep_day else dt.datetime(value.year, value.month, value.day)
    text = str(value)
    try:
        if keep_day and len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"must be a date such as 2016-01-01; got {value!r}") from None


class TrainWindow(SpecModel):
    """``data.train``: time steps from ``from`` through ``until`` (both included; a day
    written alone, ``until: 2015-12-31``, includes all of that day) are trained on."""

    start: dt.datetime | None = Field(default=None, alias="from")
    until: dt.datetime | dt.date | None = None

    @field_validator("start", mode="before")
    @classmethod
    def _parse_start(cls, value: Any) -> Any:
        return None if value is None else parse_date(value)

    @field_validator("until", mode="before")
    @classmethod
    def _parse_until(cls, value: Any) -> Any:
        return None if value is None else parse_date(value, keep_day=True)

    @model_validator(mode="after")
    def _order(self) -> TrainWindow:
        if self.start is None and self.until is None:
            raise ValueError("give from, until or both")
        start, stop = self.bounds()
        if start is not None and stop is not None and start >= stop:
            raise ValueError(
                f"from {show_time(self.start)} is not before until {show_time(self.until)}"
            )
        return self

    def bounds(self) -> tuple[np.datetime64 | None, np.datetime64 | None]:
        """The window as ``[start, stop)`` in nanoseconds (None: open on that side)."""
        start = None if self.start is None else np.datetime64(self.start, "ns")
        stop = None
        if isinstance(self.until, dt.datetime):
            stop = np.datetime64(self.until, "ns") + np.timedelta64(1, "ns")
        elif self.until is not None:
            stop = np.datetime64(self.until + dt.timedelta(days=1), "ns")
        return start, stop

    def contains(self, times: np.ndarray) -> np.ndarray:
        """Which of ``times`` (datetime64) lie in the window."""
        start, stop = self.bounds()
        inside = np.ones(np.shape(times), dtype=bool)
        if start is not None:
            inside &= times >= start
        if stop is not None:
            inside &= times < stop
        return inside

    def describe(self) -> str:
        """The window as the user wrote it: ``2010-01-01 .. 2015-12-31``."""
        start = "(start)" if self.start is None else show_time(self.start)
        until = "(end)" if self.until is None else show_time(self.until)
        return f"{start} .. {until}"


def show_time(value: Any) -> str:
    """A date or time as people write it: ``2016-01-01``, or ``2016-01-01 06:00`` when it
    has a time of day (numpy's datetime64 too)."""
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[s]").item()
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return f"{value:%Y-%m-%d}"
        return f"{value:%Y-%m-%d %H:%M}" if value.second == 0 else f"{value:%Y-%m-%d %H:%M:%S}"
    return str(value)


def check_where(value: Any) -> Any:
    """``data.where``: the name of a boolean or 0/1 variable on the space dims, or a box of
    ``{coordinate: [low, high]}`` (bounds included) over coordinates along space."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must name a mask variable or give {coordinate: [low, high]}")
        return check_line(value)
    if not isinstance(value, dict) or not value:
        raise ValueError(
            "must be a mask variable's name or a box such as {lat: [40, 50], lon: [0, 10]}; "
            f"got {value!r}"
        )
    box: dict[str, list[float]] = {}
    for name, bounds in value.items():
        numbers = isinstance(bounds, list | tuple) and all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in bounds
        )
        if not numbers or len(bounds) != 2:
            raise ValueError(f"{name}: give [low, high]; got {bounds!r}")
        low, high = float(bounds[0]), float(bounds[1])
        if not low <= high:
            raise ValueError(f"{name}: low {bounds[0]} is above high {bounds[1]}")
        box[check_line(str(name))] = [low, high]
    return box
