"""Targets of any dtype: numbers, bools and a classifier's text labels (``forest``,
``water``). A row is labelled where its target is a finite number, or a non-empty text; text
labels stay text through the search, the test scores and ``predict`` (which writes them, ""
where there is none)."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_text(dtype: Any) -> bool:
    """Whether a target of ``dtype`` holds text labels (str, bytes, or Python objects as
    xarray reads NetCDF strings)."""
    return np.dtype(dtype).kind in "OUS"


def has_label(y: np.ndarray) -> np.ndarray:
    """Which rows of ``y`` ((rows,), or (rows, targets): every target) are labelled: finite
    numbers, or non-empty texts (None, NaN and "" are none)."""
    if not is_text(y.dtype):
        finite = np.isfinite(y)
        return finite if finite.ndim == 1 else finite.all(axis=-1)
    if y.dtype.kind in "US":
        return y != y.dtype.type()
    text = np.frompyfunc(lambda v: isinstance(v, str | bytes) and len(v) > 0, 1, 1)
    return np.asarray(text(y), dtype=bool)


def as_target(y: np.ndarray) -> np.ndarray:
    """Labelled values as the search takes them: numbers as float64, texts as str."""
    if not is_text(y.dtype):
        return y.astype(np.float64, copy=False)
    if y.dtype.kind == "S":
        return np.char.decode(y, "utf-8")
    if y.dtype.kind == "O":
        decoded = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in y.tolist()]
        return np.asarray(decoded, dtype=str)
    return y


def is_constant(y: np.ndarray) -> bool:
    """Whether every value of ``y`` (labelled rows) is the same (of each target, for several)."""
    if is_text(y.dtype):
        return np.unique(y).size <= 1
    return bool((np.ptp(y, axis=0) == 0).all())


def shown(value: Any) -> str:
    """A target value in a message: ``0.5`` or ``'forest'``."""
    return repr(str(value)) if isinstance(value, str | bytes) else f"{value:g}"


def empty_labels(shape: tuple[int, ...], text: bool) -> np.ndarray:
    """An array of no labels: NaN, or "" for text labels."""
    if text:
        return np.full(shape, "", dtype=object)
    return np.full(shape, np.nan, dtype=np.float64)
