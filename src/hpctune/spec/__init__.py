"""The job spec: a YAML file validated into a typed :class:`Job`.

Every value is checked here, once, before anything is opened, rendered or written. Errors
become a :class:`~hpctune.errors.SpecError` naming the dotted key at fault, for example
``search.cv.splits: must be >= 2; got 1``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from ..errors import SpecError
from ..units import duration, parse_memory, parse_walltime

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
IMPORT_PATH_PATTERN = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
OVERRIDE_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DIRECTIVE_PATTERN = re.compile(r"^-{1,2}[A-Za-z][A-Za-z0-9_-]*([= ][^\n\r\x00]*)?$")
#: Distributions a random search may name in YAML, e.g. ``{loguniform: [1e-5, 1e-1]}``.
DISTRIBUTIONS = ("loguniform", "uniform", "randint")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _check_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise ValueError(
            f"must match [A-Za-z0-9._-]+ (letters, digits, '.', '_', '-'); got {value!r}"
        )
    if value in {".", ".."}:
        raise ValueError(f"must not be {value!r}")
    return value


def _check_line(value: str) -> str:
    if any(ch in value for ch in "\n\r\x00"):
        raise ValueError(f"must be a single line without newline or NUL characters; got {value!r}")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HoldOut(_Model):
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


class DataSpec(_Model):
    paths: list[str] = Field(min_length=1)
    space: list[str] = Field(default=["space"], min_length=1)
    time: str = "time"
    inputs: list[str] = Field(min_length=1)
    target: str
    chunk: int = Field(default=500, ge=1)
    test: HoldOut | None = None
    engine: Literal["netcdf4", "h5netcdf"] | None = None

    _normalise = field_validator("paths", "space", mode="before")(_as_list)

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path:
                raise ValueError("a path must not be empty")
            _check_line(path)
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
        if self.target in self.inputs:
            raise ValueError(f"target {self.target!r} is also listed in inputs")
        if self.time in self.space:
            raise ValueError(f"time dimension {self.time!r} is also listed in space")
        return self


class PartitionSpec(_Model):
    by: str = "cell"
    """``cell`` for one search per cell, or the name of a variable along space (one per value)."""


class CVSpec(_Model):
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
        return self.repeats if self.repeats is not None else 10


class SearchSpec(_Model):
    method: Literal["grid", "random"] = "grid"
    estimator: list[str] = Field(min_length=1)
    params: dict[str, Any] = Field(min_length=1)
    n_iter: int = Field(default=10, ge=1)
    cv: CVSpec = CVSpec()
    scoring: list[str] = Field(default=["r2"], min_length=1)
    refit: str | None = None
    seed: int = 0
    min_samples: int = Field(default=50, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    error_score: Literal["raise", "nan"] = "raise"

    _normalise = field_validator("estimator", "scoring", mode="before")(_as_list)

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

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpec:
        duplicates = sorted({s for s in self.scoring if self.scoring.count(s) > 1})
        if duplicates:
            raise ValueError(f"scoring names a scorer twice: {', '.join(duplicates)}")
        if self.refit is not None and self.refit not in self.scoring:
            raise ValueError(
                f"refit {self.refit!r} must be one of the scoring names: {', '.join(self.scoring)}"
            )
        if self.method == "grid":
            for name, values in self.params.items():
                if isinstance(values, Mapping):
                    raise ValueError(f"params.{name}: distributions need method: random")
        return self

    @property
    def refit_metric(self) -> str:
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


class AdaptiveSpec(_Model):
    minimum: int = Field(default=0, ge=0)
    maximum: int = Field(ge=1)

    @model_validator(mode="after")
    def _order(self) -> AdaptiveSpec:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        return self


class ClusterSpec(_Model):
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
        return None if value is None else _check_name(value)


MAX_SIGNAL_SECONDS = 65535
"""The longest warning SLURM's ``--signal=...@seconds`` accepts."""

#: Directives that hpctune writes itself from a spec key (or a submit option): an ``extra``
#: entry may not repeat them. Keys are options, or ``-l resource`` for PBS resources.
RESERVED_DIRECTIVES: dict[str, dict[str, str]] = {
    "slurm": {
        **dict.fromkeys(("-J", "--job-name"), "name"),
        **dict.fromkeys(("-N", "--nodes"), "scheduler.nodes"),
        **dict.fromkeys(("-c", "--cpus-per-task", "--ntasks-per-node"), "scheduler.cores_per_node"),
        **dict.fromkeys(("--mem",), "scheduler.memory"),
        **dict.fromkeys(("-t", "--time"), "scheduler.walltime"),
        **dict.fromkeys(("-p", "--partition"), "scheduler.queue"),
        **dict.fromkeys(("-A", "--account"), "scheduler.account"),
        **dict.fromkeys(("-o", "--output", "-e", "--error"), "scheduler.log_dir"),
        **dict.fromkeys(("--signal",), "scheduler.grace"),
        **dict.fromkeys(("-a", "--array"), "submit --array"),
        **dict.fromkeys(("-d", "--dependency"), "submit --after"),
    },
    "pbs": {
        "-N": "name",
        "-q": "scheduler.queue",
        "-A": "scheduler.account",
        "-J": "submit --array",
        "-l select": "scheduler.nodes, cores_per_node and memory",
        "-l walltime": "scheduler.walltime",
    },
    "torque": {
        "-N": "name",
        "-q": "scheduler.queue",
        "-A": "scheduler.account",
        "-t": "submit --array",
        "-l nodes": "scheduler.nodes and cores_per_node",
        "-l mem": "scheduler.memory",
        "-l walltime": "scheduler.walltime",
    },
}


class SchedulerSpec(_Model):
    kind: Literal["slurm", "pbs", "torque"] = "slurm"
    nodes: int = Field(default=1, ge=1)
    cores_per_node: int = Field(default=1, ge=1)
    memory: int | None = None
    """Bytes per node (powers of two). Written as ``120GB`` / ``500MB`` / a number of GiB."""
    walltime: int = 3600
    """Seconds. Written in any form ``sbatch --time`` reads (:func:`parse_walltime`)."""
    queue: str | None = None
    account: str | None = None
    setup: list[str] = []
    extra: list[str] = []
    log_dir: str | None = None
    env: dict[str, str] = {}
    grace: int = Field(default=120, ge=0)
    """Seconds before the walltime at which the job is asked to stop and requeue."""

    _normalise = field_validator("setup", "extra", mode="before")(_as_list)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> int | None:
        return None if value is None else parse_memory(value)

    @field_validator("walltime", mode="before")
    @classmethod
    def _walltime(cls, value: Any) -> int:
        return parse_walltime(value)

    @field_serializer("walltime")
    def _walltime_text(self, value: int) -> str:
        """``H:MM:SS`` or ``D-HH:MM:SS``: read back as the same walltime (a number would be
        minutes)."""
        return duration(value)

    @field_validator("queue", "account")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value)

    @field_validator("setup")
    @classmethod
    def _setup(cls, value: list[str]) -> list[str]:
        return [_check_line(str(line)) for line in value]

    @field_validator("extra")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        for directive in value:
            _check_line(directive)
            if not DIRECTIVE_PATTERN.match(directive):
                raise ValueError(
                    f"each entry must be a scheduler option such as --gres=gpu:1; got {directive!r}"
                )
        return value

    @field_validator("extra")
    @classmethod
    def _extra_not_reserved(cls, value: list[str], info: ValidationInfo) -> list[str]:
        reserved = RESERVED_DIRECTIVES.get(info.data.get("kind", "slurm"), {})
        for directive in value:
            try:
                shlex.split(directive)
            except ValueError:
                raise ValueError(
                    f"{directive!r} has an unmatched quote, which sbatch and qsub refuse"
                ) from None
            option = re.split(r"[= ]", directive, maxsplit=1)[0]
            resource = ""
            if option == "-l":
                resource = re.split(r"[= ]", directive[2:].strip(), maxsplit=1)[0]
            key = reserved.get(f"-l {resource}" if resource else option)
            if key:
                raise ValueError(
                    f"{directive!r} is written by hpctune from {key}; set that instead"
                )
        return value

    @field_validator("grace")
    @classmethod
    def _grace(cls, value: int, info: ValidationInfo) -> int:
        walltime = info.data.get("walltime")
        if value > MAX_SIGNAL_SECONDS:
            raise ValueError(f"must be at most {MAX_SIGNAL_SECONDS} seconds; got {value}")
        if value and walltime is not None and value >= walltime:
            raise ValueError(
                f"must be shorter than the walltime ({walltime} s), to leave time to work; "
                f"got {value}"
            )
        return value

    @field_validator("log_dir")
    @classmethod
    def _log_dir(cls, value: str | None) -> str | None:
        return None if value is None else _check_line(value)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        checked = {}
        for key, val in value.items():
            if not isinstance(key, str) or not ENV_NAME_PATTERN.match(key):
                raise ValueError(f"variable name {key!r} is not a valid environment name")
            if isinstance(val, Mapping | list) or val is None:
                raise ValueError(f"{key}: value must be a string or number; got {val!r}")
            checked[key] = _check_line(str(val))
        return checked


class Job(_Model):
    """A validated job spec. Paths are absolute (resolved against the spec file's folder)."""

    name: str
    data: DataSpec
    partition: PartitionSpec = PartitionSpec()
    search: SearchSpec
    cluster: ClusterSpec = ClusterSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    output: str = "results/{name}"

    _spec_path: Path | None = PrivateAttr(default=None)

    _name = field_validator("name")(_check_name)

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        _check_line(value)
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def spec_path(self) -> Path | None:
        """The YAML file this job was read from, if any."""
        return self._spec_path

    @property
    def output_dir(self) -> Path:
        return Path(self.output)

    @property
    def log_dir(self) -> Path:
        return Path(self.scheduler.log_dir) if self.scheduler.log_dir else self.output_dir / "logs"

    def fingerprint(self) -> str:
        """A hash of everything that decides the results; runs with another hash do not mix."""
        return hashlib.sha256(
            json.dumps(self.result_defining(), sort_keys=True, default=str).encode()
        ).hexdigest()[:16]

    def result_defining(self) -> dict[str, Any]:
        data = self.data.model_dump(mode="json", by_alias=True, exclude={"chunk", "engine"})
        search = self.search.model_dump(mode="json", by_alias=True, exclude={"timeout"})
        return {
            "data": data,
            "partition": self.partition.model_dump(mode="json"),
            "search": search,
        }

    def to_dict(self) -> dict[str, Any]:
        """The spec with defaults filled in, as plain data (what ``validate --json`` prints)."""
        return self.model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------- loading


class SpecLoader(yaml.SafeLoader):
    """YAML as ``yaml.safe_load`` reads it, but a YAML 1.1 sexagesimal number stays text.

    pyyaml reads an unquoted ``1:00:00`` as the integer 3600 and ``1:30`` as 90, the same as
    ``90`` written plainly: a walltime could not tell ``90`` minutes from ``1:30`` (one minute
    and a half). Kept as text, ``1:00:00`` is read as ``H:M:S``, as ``sbatch --time`` reads it.
    """


def _number_or_text(loader: SpecLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if isinstance(text, str) and ":" in text:
        return text
    if node.tag.endswith(":int"):
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    return yaml.SafeLoader.construct_yaml_float(loader, node)


SpecLoader.add_constructor("tag:yaml.org,2002:int", _number_or_text)
SpecLoader.add_constructor("tag:yaml.org,2002:float", _number_or_text)


def load_spec(
    source: str | Path | Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    base_dir: str | Path | None = None,
) -> Job:
    """Read, override and validate a job spec.

    ``source`` is a YAML file or an already parsed mapping (then relative paths are resolved
    against ``base_dir``, default the current folder). ``overrides`` are ``dotted.key=value``
    strings whose values are read as YAML scalars.
    """
    if isinstance(source, Mapping):
        raw: Any = _deep_copy(source)
        spec_path = None
        base = Path(base_dir or ".").resolve()
    else:
        spec_path = Path(source)
        raw = _read_yaml(spec_path)
        base = spec_path.resolve().parent
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else type(raw).__name__
        raise SpecError("spec", f"must be a mapping of keys such as name, data, search; got {kind}")
    for override in overrides:
        apply_override(raw, override)
    job = validate(raw)
    job = _resolve_paths(job, base)
    job._spec_path = spec_path.resolve() if spec_path else None
    return job


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("spec", f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError("spec", f"cannot read {path}: {exc}") from None
    try:
        return yaml.load(text, Loader=SpecLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError("spec", f"malformed YAML in {path}{where}: {problem}") from None


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply one ``dotted.key=value`` override to a raw spec mapping, in place."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not all(OVERRIDE_KEY_PATTERN.match(part) for part in key.split(".")):
        raise SpecError("--set", f"expects dotted.key=value; got {override!r}")
    try:
        value = yaml.load(text, Loader=SpecLoader) if text.strip() else ""
    except yaml.YAMLError:
        raise SpecError(key, f"the value {text!r} given with --set is not valid YAML") from None
    node = raw
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise SpecError(key, f"cannot set a key below {where!r}, which is not a mapping")
        node = child
    node[parts[-1]] = value


def validate(raw: Mapping[str, Any]) -> Job:
    try:
        job = Job.model_validate(raw)
    except ValidationError as exc:
        raise _spec_error(exc) from None
    _check_worker_threads(job)
    return job


def _check_worker_threads(job: Job) -> None:
    """``cluster.processes: false`` (workers as threads of the hpctune process) is for the
    local cluster, with a task per fit, and without a search timeout."""
    cluster = job.cluster
    if cluster.processes is not False:
        return
    if cluster.mode in ("allocation", "jobqueue"):
        why = f"is for mode local; mode {cluster.mode} starts worker processes on the nodes"
    elif cluster.granularity == "partition":
        why = (
            "needs granularity fit or auto: with granularity partition the workers read "
            "NetCDF, which is not thread-safe"
        )
    elif job.search.timeout is not None:
        why = (
            "does not go with search.timeout: a search past its timeout is ended with its "
            "worker process, and a thread cannot be ended"
        )
    else:
        return
    raise SpecError("cluster.processes", f"false (workers as threads of hpctune) {why}")


def _resolve_paths(job: Job, base: Path) -> Job:
    def resolve(path: str) -> str:
        expanded = Path(path).expanduser()
        return os.path.abspath(expanded if expanded.is_absolute() else base / expanded)

    try:
        output = job.output.format(name=job.name)
    except (KeyError, IndexError, ValueError) as exc:
        raise SpecError("output", f"only the placeholder {{name}} may be used; got {exc}") from None
    data = job.data.model_copy(update={"paths": [resolve(p) for p in job.data.paths]})
    scheduler = job.scheduler
    if scheduler.log_dir:
        scheduler = scheduler.model_copy(update={"log_dir": resolve(scheduler.log_dir)})
    return job.model_copy(update={"data": data, "output": resolve(output), "scheduler": scheduler})


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value


# --------------------------------------------------------------------------- messages


def _spec_error(exc: ValidationError) -> SpecError:
    """The first validation error as one line naming its dotted key."""
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc) or "spec"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return SpecError(key, f"unknown key{hint}")
    if kind == "missing":
        return SpecError(key, "is required")
    if kind == "literal_error":
        return SpecError(key, f"must be one of {ctx.get('expected')}; got {value!r}")
    if kind in {"greater_than_equal", "greater_than"}:
        bound = ctx.get("ge", ctx.get("gt"))
        op = ">=" if kind == "greater_than_equal" else ">"
        return SpecError(key, f"must be {op} {bound}; got {value!r}")
    if kind in {"too_short"}:
        return SpecError(key, f"must not be empty; got {value!r}")
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return SpecError(key, f"must be a mapping; got {_short(value)}")
    if kind == "list_type":
        return SpecError(key, f"must be a list; got {_short(value)}")
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return SpecError(key, f"must be a whole number; got {_short(value)}")
    if kind in {"float_type", "float_parsing"}:
        return SpecError(key, f"must be a number; got {_short(value)}")
    if kind in {"bool_type", "bool_parsing"}:
        return SpecError(key, f"must be true or false; got {_short(value)}")
    if kind == "string_type":
        return SpecError(key, f"must be a string; got {_short(value)}")
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return SpecError(key, message[:1].lower() + message[1:])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(loc: list[str]) -> list[str]:
    model: Any = Job
    for part in loc:
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]
