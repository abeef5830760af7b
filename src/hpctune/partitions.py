"""Partitions, now :mod:`hpctune.data.partitions`; these names stay importable here."""

from __future__ import annotations

from .data.partitions import (
    SLICE_PATTERN,
    PartitionPlan,
    make_plan,
    model_file_name,
    parse_slice,
    slice_indices,
)

__all__ = [
    "SLICE_PATTERN",
    "PartitionPlan",
    "make_plan",
    "model_file_name",
    "parse_slice",
    "slice_indices",
]
