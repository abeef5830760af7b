"""The job spec: a YAML file validated into a typed :class:`Job`.

Every value is checked here, once, before anything is opened, rendered or written. Errors
become a :class:`~hpctune.errors.SpecError` naming the dotted key at fault, for example
``search.cv.splits: must be >= 2; got 1``.

``schema`` holds the sections, ``scheduler`` the scheduler section, ``halving`` the settings of a
successive-halving search, ``load`` the reading of a file and its overrides, ``messages`` the
wording of errors, ``engines`` the xarray engines ``data.engine`` may name.
"""

from __future__ import annotations

from ..units import parse_memory, parse_walltime
from .fields import NAME_PATTERN
from .halving import GRID_METHODS, HALVING_METHODS, HalvingSpec
from .load import OVERRIDE_KEY_PATTERN, SpecLoader, apply_override, from_mapping, load_spec
from .scheduler import (
    DIRECTIVE_PATTERN,
    ENV_NAME_PATTERN,
    SchedulerSpec,
)
from .schema import (
    DISTRIBUTIONS,
    IMPORT_PATH_PATTERN,
    AdaptiveSpec,
    ClusterSpec,
    CVSpec,
    DataSpec,
    HoldOut,
    Job,
    PartitionSpec,
    SearchSpec,
)
from .subset import TrainWindow

validate = from_mapping

__all__ = [
    "DIRECTIVE_PATTERN",
    "DISTRIBUTIONS",
    "ENV_NAME_PATTERN",
    "GRID_METHODS",
    "HALVING_METHODS",
    "IMPORT_PATH_PATTERN",
    "NAME_PATTERN",
    "OVERRIDE_KEY_PATTERN",
    "AdaptiveSpec",
    "CVSpec",
    "ClusterSpec",
    "DataSpec",
    "HalvingSpec",
    "HoldOut",
    "Job",
    "PartitionSpec",
    "SchedulerSpec",
    "SearchSpec",
    "SpecLoader",
    "TrainWindow",
    "apply_override",
    "from_mapping",
    "load_spec",
    "parse_memory",
    "parse_walltime",
    "validate",
]
