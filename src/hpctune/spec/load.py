"""Reading a job spec: YAML, ``--set`` overrides, validation, and paths made absolute."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import SpecError
from .halving import check_halving
from .messages import spec_error
from .schema import Job

OVERRIDE_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    job = from_mapping(raw)
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
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date such as 2016-13-45
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
    except (yaml.YAMLError, ValueError):  # ValueError: a date such as 2016-13-45
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


def from_mapping(raw: Mapping[str, Any]) -> Job:
    """The :class:`Job` of an already parsed spec (paths left as written), or the first
    problem as one :class:`~hpctune.errors.SpecError` naming its key."""
    try:
        job = Job.model_validate(raw)
    except ValidationError as exc:
        raise spec_error(exc) from None
    _check_worker_threads(job)
    check_halving(job)
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
