"""The training and test periods of a job on the data's time axis: which steps each holds,
and the refusal of a period that holds none (the data end before ``data.test.from``, or the
``data.train`` window lies outside them), before anything is started or written."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..spec import DataSpec
from ..spec.subset import show_time


def period_masks(data: DataSpec, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``times`` (sorted) are training and which test steps: training steps lie
    before ``data.test.from`` and inside ``data.train``; test steps from ``data.test.from`` on,
    whatever the window. A time axis without dates has no test period and no window."""
    train = np.ones(times.shape, dtype=bool)
    test = np.zeros(times.shape, dtype=bool)
    if not np.issubdtype(times.dtype, np.datetime64):
        return train, test
    if data.test is not None:
        test = times >= np.datetime64(data.test.start, "ns")
        train = ~test
    if data.train is not None:
        train &= data.train.contains(times)
    return train, test


def check_periods(data: DataSpec, times: np.ndarray) -> None:
    """Refuse a test period or a training window that holds no step of the data (the
    steps of ``times``, sorted): a run would train on nothing or score on nothing."""
    if data.train is not None and not np.issubdtype(times.dtype, np.datetime64):
        raise DataError("data.train", f"the time coordinate {data.time!r} holds no dates")
    if data.test is None and data.train is None:
        return
    if times.size == 0:
        key = "data.train" if data.train is not None else "data.test.from"
        raise DataError(key, f"the time axis {data.time!r} has no steps")
    train, test = period_masks(data, times)
    first, last = show_time(times[0]), show_time(times[-1])
    start = "" if data.test is None else show_time(data.test.start)
    if data.test is not None and not test.any():
        raise DataError(
            "data.test.from",
            f"{start} is after the data's last time {last}: the test period holds no steps",
        )
    if train.any():
        return
    if data.train is None:
        raise DataError(
            "data.test.from",
            f"{start} is at or before the data's first time {first}: no training steps remain",
        )
    before = f" before data.test.from {start}" if data.test is not None else ""
    raise DataError(
        "data.train",
        f"{data.train.describe()} holds no time step of the data ({first} .. {last}){before}",
    )
