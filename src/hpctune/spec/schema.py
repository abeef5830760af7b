"""The job spec's sections as typed, validated models; :class:`Job` is the whole spec.

Every value is checked here, once, before anything is opened, rendered or written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from .engines import check_engine
from .fields import SpecModel, as_list, check_line, check_name, check_target
from .halving import GRID_METHODS, HalvingSpec, halving_defaults
from .scheduler import SchedulerSpec
from .subset import TrainWindow, check_where

NEW_DATA_KEYS = ("train", "where")
"""Optional ``data`` keys added since fingerprints were first written: left out of the hash
while unset, so that the results of an existing spec keep their fingerprint."""
IMPORT_PATH_PATTERN = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
#: Distributions a random search may name in YAML, e.g. ``{loguniform: [1e-5, 1e-1]}``.
DISTRIBUTIONS = ("loguniform", "uniform", "randint")


class HoldOut(SpecModel):
    """Time steps at or after ``from`` are held out as test data."""

    start: dt.datetime = Field(alias="from")

    @field_validator("start", mode="before")
    @classmethod
    def _parse_date(cls, value: Any) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day)
        try:
            return dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"must be a date such as 2016-01-01; got {value!r}") from None


class DataSpec(SpecModel):
    """``data``: the NetCDF files or Zarr stores, which dims are space and time, the inputs and
    the target, the optional held-out test period, and the optional time window and cells
    trained on."""

    paths: list[str] = Field(min_length=1)
    space: list[str] = Field(default=["space"], min_length=1)
    time: str = "time"
    inputs: list[str] = Field(min_length=1)
    target: str | list[str]
    """One variable, or a list (several targets: one model per partition predicts them all)."""
    chunk: int = Field(default=500, ge=1)
    test: HoldOut | None = None
    train: TrainWindow | None = None
    where: str | dict[str, list[float]] | None = None
    engine: str | None = None

    _normalise = field_validator("paths", "space", mode="before")(as_list)
    _engine = field_validator("engine")(check_engine)
    _where = field_validator("where", mode="before")(check_where)
    _target = field_validator("target", mode="before")(check_target)

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path:
                raise ValueError("a path must not be empty")
            check_line(path)
        return value

    @field_validator("inputs")
    @classmethod
    def _unique_inputs(cls, value: list[str]) -> list[str]:
        duplicates = sorted({v for v in value if value.count(v) > 1})
        if duplicates:
            raise ValueError(f"names an input twice: {', '.join(duplicates)}")
        return value

    @model_validator(mode="after")
    def _target_not_input(self) -> DataSpec:
        for target in self.targets:
            if target in self.inputs:
                raise ValueError(f"target {target!r} is also listed in inputs")
        if self.time in self.space:
            raise ValueError(f"time dimension {self.time!r} is also listed in space")
        return self

    @property
    def targets(self) -> list[str]:
        """The target variables: ``[target]`` for a single one."""
        return [self.target] if isinstance(self.target, str) else list(self.target)

    @property
    def multi_target(self) -> bool:
        """Whether ``target`` is a list: results.nc's ``test_*`` then have a ``target`` dim and
        predict writes one variable per target (a string keeps the single-target layout)."""
        return not isinstance(self.target, str)


class PartitionSpec(SpecModel):
    """``partition``: which cells one search sees (one cell, or every cell of a group)."""

    by: str = "cell"
    """``cell`` for one search per cell, or the name of a variable along space (one per value)."""


class CVSpec(SpecModel):
    """``search.cv``: how a partition's training rows are split into folds; which keys apply
    depends on the kind, and a key that does not apply is refused rather than ignored."""

    kind: Literal["kfold", "repeated", "timeseries", "years"] = "kfold"
    splits: int | None = Field(default=None, ge=2)
    repeats: int | None = Field(default=None, ge=1)
    shuffle: bool | None = None

    @model_validator(mode="after")
    def _applicable(self) -> CVSpec:
        if self.kind == "years" and self.splits is not None:
            raise ValueError("'splits' does not apply to kind 'years' (one fold per year)")
        if self.repeats is not None and self.kind != "repeated":
            raise ValueError(f"'repeats' applies to kind 'repeated' only, not {self.kind!r}")
        if self.shuffle is not None and self.kind != "kfold":
            raise ValueError(f"'shuffle' applies to kind 'kfold' only, not {self.kind!r}")
        return self

    @property
    def n_splits(self) -> int:
        """Folds per repeat, with scikit-learn's default of 5."""
        return self.splits if self.splits is not None else 5

    @property
    def n_repeats(self) -> int:
        """Repeats of kind ``repeated``, with scikit-learn's default of 10."""
        return self.repeats if self.repeats is not None else 10


class SearchSpec(SpecModel):
    """``search``: the estimator (one class or a pipeline), the parameters searched, scoring,
    and what makes a partition skipped or failed."""

    method: Literal["grid", "random", "halving", "halving-random"] = "grid"
    estimator: list[str] = Field(min_length=1)
    params: dict[str, Any] = Field(min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    """Constructor arguments set as given and not searched (``svr__epsilon: 0.05``)."""
    n_iter: int = Field(default=10, ge=1)
    cv: CVSpec = CVSpec()
    scoring: list[str] = Field(default=["r2"], min_length=1)
    refit: str | None = None
    seed: int = 0
    min_samples: int = Field(default=50, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    error_score: Literal["raise", "nan"] = "raise"
    halving: HalvingSpec | None = None

    _normalise = field_validator("estimator", "scoring", mode="before")(as_list)
    _halving = model_validator(mode="before")(halving_defaults)

    @field_validator("estimator")
    @classmethod
    def _import_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not isinstance(path, str) or not IMPORT_PATH_PATTERN.match(path):
                raise ValueError(f"must be an import path such as sklearn.svm.SVR; got {path!r}")
        return value

    @field_validator("params")
    @classmethod
    def _param_values(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, values in value.items():
            if not re.match(r"^[A-Za-z_]\w*$", str(name)):
                raise ValueError(f"parameter name {name!r} is not a valid name")
            if isinstance(values, Mapping):
                _check_distribution(name, values)
            elif not isinstance(values, list):
                raise ValueError(
                    f"{name}: give a list of values (or a distribution for method random); "
                    f"got {values!r}"
                )
            elif not values:
                raise ValueError(f"{name}: the list of values is empty")
        return value

    @field_validator("fixed")
    @classmethod
    def _fixed_names(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        searched = info.data.get("params") or {}
        for name in value:
            if not re.match(r"^[A-Za-z_]\w*$", str(name)):
                raise ValueError(f"parameter name {name!r} is not a valid name")
            if name in searched:
                raise ValueError(
                    f"{name} is also searched (search.params.{name}); "
                    "a parameter is either fixed or searched"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpec:
        duplicates = sorted({s for s in self.scoring if self.scoring.count(s) > 1})
        if duplicates:
            raise ValueError(f"scoring names a scorer twice: {', '.join(duplicates)}")
        if self.refit is not None and self.refit not in self.scoring:
            raise ValueError(
                f"refit {self.refit!r} must be one of the scoring names: {', '.join(self.scoring)}"
            )
        if self.method in GRID_METHODS:
            for name, values in self.params.items():
                if isinstance(values, Mapping):
                    raise ValueError(
                        f"params.{name}: distributions need method: random or halving-random"
                    )
        return self

    @property
    def refit_metric(self) -> str:
        """The scorer that picks the best candidate (and is results.nc's ``best_score``)."""
        return self.refit or self.scoring[0]


def _check_distribution(name: str, spec: Mapping[str, Any]) -> None:
    if len(spec) != 1:
        raise ValueError(
            f"{name}: a distribution is one of {', '.join(DISTRIBUTIONS)}: [low, high]"
        )
    ((kind, bounds),) = spec.items()
    if kind not in DISTRIBUTIONS:
        raise ValueError(
            f"{name}: unknown distribution {kind!r}; available: {', '.join(DISTRIBUTIONS)}"
        )
    ok = (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
    )
    if not ok or not bounds[0] < bounds[1]:
        raise ValueError(f"{name}: {kind} needs [low, high] with low < high; got {bounds!r}")
    if kind == "loguniform" and bounds[0] <= 0:
        raise ValueError(f"{name}: loguniform needs low > 0; got {bounds!r}")
    if kind == "randint" and not all(isinstance(b, int) for b in bounds):
        raise ValueError(f"{name}: randint needs integer bounds; got {bounds!r}")


class AdaptiveSpec(SpecModel):
    """``cluster.adaptive``: the bounds of worker jobs when jobqueue scales with the work."""

    minimum: int = Field(default=0, ge=0)
    maximum: int = Field(ge=1)

    @model_validator(mode="after")
    def _order(self) -> AdaptiveSpec:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        return self


class ClusterSpec(SpecModel):
    """``cluster``: where the workers run and how many; none of it changes results."""

    mode: Literal["auto", "local", "allocation", "jobqueue"] = "auto"
    """``auto``: ``allocation`` inside a SLURM/PBS job of several nodes or tasks, else ``local``."""
    workers: int | None = Field(default=None, ge=1)
    """Worker processes (local: on this machine; allocation: per node; jobqueue: per worker
    job). Default: as many as the CPUs allow with ``threads`` threads each."""
    threads: int = Field(default=1, ge=1)
    """Threads per worker process (1: processes measured faster and NetCDF reads are not
    thread-safe)."""
    interface: str | None = None
    """Network interface the scheduler and workers listen on (e.g. ``ib0``; ``lo`` in tests)."""
    jobs: int = Field(default=1, ge=1)
    """jobqueue: worker jobs kept running (replaced when their workers leave)."""
    adaptive: AdaptiveSpec | None = None
    """jobqueue: scale between ``minimum`` and ``maximum`` worker jobs instead of ``jobs``."""
    start_timeout: float = Field(default=300.0, gt=0)
    """Seconds to wait for the workers (jobqueue: including queue time) before giving up."""
    dashboard: bool = True
    granularity: Literal["auto", "partition", "fit"] = "auto"
    """``partition``: a task computes whole searches (many partitions); ``fit``: each fit of a
    search is a task (few partitions); ``auto`` chooses from the partition and worker counts."""
    processes: Literal["auto", True, False] = "auto"
    """local: ``true``, worker processes; ``false``, workers are threads of the ``hpctune``
    process (nothing to start or send; for estimators whose fits release the GIL), always with
    granularity ``fit``; ``auto``, threads where granularity ``fit`` is chosen, no search
    timeout is set and every step of the estimator is one measured to release the GIL
    (``hpctune.cluster.GIL_RELEASING_STEPS``), else processes."""

    @field_validator("interface")
    @classmethod
    def _interface(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value)


class Job(SpecModel):
    """A validated job spec. Paths are absolute (resolved against the spec file's folder)."""

    name: str
    data: DataSpec
    partition: PartitionSpec = PartitionSpec()
    search: SearchSpec
    cluster: ClusterSpec = ClusterSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    output: str = "results/{name}"

    _spec_path: Path | None = PrivateAttr(default=None)

    _name = field_validator("name")(check_name)

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        check_line(value)
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def spec_path(self) -> Path | None:
        """The YAML file this job was read from, if any."""
        return self._spec_path

    @property
    def output_dir(self) -> Path:
        """The output folder (absolute once loaded by :func:`~hpctune.spec.load.load_spec`)."""
        return Path(self.output)

    @property
    def log_dir(self) -> Path:
        """Where job scripts and their logs go: ``scheduler.log_dir``, else ``<output>/logs``."""
        return Path(self.scheduler.log_dir) if self.scheduler.log_dir else self.output_dir / "logs"

    def fingerprint(self) -> str:
        """A hash of everything that decides the results; runs with another hash do not mix."""
        return hashlib.sha256(
            json.dumps(self.result_defining(), sort_keys=True, default=str).encode()
        ).hexdigest()[:16]

    def result_defining(self) -> dict[str, Any]:
        """The keys that decide results (the data read, partitions, the search), as plain
        data: what :meth:`fingerprint` hashes and what a changed spec is compared on."""
        unset = {key for key in NEW_DATA_KEYS if getattr(self.data, key) is None}
        exclude = {"chunk", "engine", *unset}
        data = self.data.model_dump(mode="json", by_alias=True, exclude=exclude)
        search = self.search.model_dump(mode="json", by_alias=True, exclude={"timeout"})
        if not search["fixed"]:  # the fingerprint of a spec without fixed arguments is unchanged
            del search["fixed"]
        if search.get("halving") is None:  # nor of one without halving settings
            search.pop("halving", None)
        return {
            "data": data,
            "partition": self.partition.model_dump(mode="json"),
            "search": search,
        }

    def to_dict(self) -> dict[str, Any]:
        """The spec with defaults filled in, as plain data (what ``validate --json`` prints)."""
        return self.model_dump(mode="json", by_alias=True)
