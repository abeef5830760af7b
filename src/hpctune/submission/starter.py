"""A starter job spec written from a data file's metadata (``hpctune init``).

The data is opened as a run opens it (:func:`hpctune.data.source.open_dataset`, lazily), and
only its dims, dtypes and time coordinate are read. The spec names the space and time dims
found, the numeric variables along them as inputs, a target (given, or left to choose from the
candidates listed in a comment), a test period of the last fifth of the time steps, the search
of ``jobs/example.yaml`` and a local cluster; every key carries a comment saying what it does.
"""

from __future__ import annotations

import copy
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..data.inspect import listing
from ..data.source import open_dataset, resolve_paths
from ..errors import DataError, UsageError
from ..output.files import write_atomic
from ..spec import DataSpec
from ..spec.load import apply_override, from_mapping

TIME_NAMES = ("time", "valid_time", "t", "date", "datetime")
"""Names of a time dimension without dates, in order of preference."""

TEST_FRACTION = 0.2
"""The share of the time steps, the last ones, held out as the test period."""

SEARCH: dict[str, Any] = {
    "method": "grid",
    "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
    "params": {"svr__C": [0.1, 1, 10], "svr__gamma": ["scale", 0.1]},
    "cv": {"kind": "kfold", "splits": 3},
    "scoring": ["r2", "neg_mean_squared_error"],
    "refit": "r2",
    "seed": 0,
    "min_samples": 50,
}
"""The search of ``jobs/example.yaml``: a scaled SVR on a small grid, 3 folds."""

COMMENTS = {
    "name": "[A-Za-z0-9._-]+ ; names the output folder and the scheduler jobs",
    "data.paths": "a path, a glob, or a list of them (relative to this file)",
    "data.time": "the time dimension",
    "data.inputs": "numeric variables along (space, time)",
    "data.chunk": "cells read at once, at most",
    "data.test": "time >= from is held out as test data (the last ~20% of the steps)",
    "partition.by": "cell: one search per cell; or a variable along space (one per value)",
    "search.method": "grid | random (with n_iter)",
    "search.params": "a list of values per parameter",
    "search.cv": "kfold | repeated | timeseries | years",
    "search.refit": "the scorer that picks the best candidate",
    "search.min_samples": "fewer training rows: the partition is skipped",
    "cluster.mode": "local: workers on this machine; on a cluster see the README (allocation, "
    "jobqueue, hpctune submit)",
    "output": "the output folder ({name} is replaced)",
}
"""The comment written after each key (dotted), when the key is written."""


@dataclass(frozen=True)
class Found:
    """What the data's metadata gives a spec: the dims, the candidate variables, and the
    variables that cannot be inputs with the reason why."""

    paths: tuple[str, ...]
    space: tuple[str, ...]
    space_shape: tuple[int, ...]
    time: str
    steps: int
    candidates: tuple[str, ...]
    """Numeric variables along exactly the space and time dims: inputs or the target."""
    groups: tuple[str, ...]
    """Integer or boolean variables along the space dims only: ``partition.by`` candidates."""
    others: dict[str, str] = field(default_factory=dict)
    """Variables that are not candidates -> why not."""
    test_from: str | None = None
    test_steps: int = 0

    @property
    def cells(self) -> int:
        return int(np.prod(self.space_shape))


@dataclass(frozen=True)
class Starter:
    """A written starter spec: where, what it holds, and the command to type next."""

    path: Path
    found: Found
    spec: dict[str, Any]
    next: str

    @property
    def target(self) -> str | list[str] | None:
        return self.spec["data"].get("target")

    def to_dict(self) -> dict[str, Any]:
        data = self.spec["data"]
        return {
            "written": str(self.path),
            "name": self.spec["name"],
            "space": dict(zip(self.found.space, self.found.space_shape, strict=True)),
            "time": {"name": self.found.time, "steps": self.found.steps},
            "inputs": list(data["inputs"]),
            "target": self.target,
            "candidates": list(self.found.candidates),
            "test_from": self.found.test_from,
            "next": self.next,
        }

    def lines(self) -> list[str]:
        """The command's text output: what was written, and what to do next."""
        sizes = zip(self.found.space, self.found.space_shape, strict=True)
        space = " x ".join(f"{d}={n}" for d, n in sizes)
        target: Any = self.target or "to choose"
        if isinstance(target, list):
            target = ", ".join(map(str, target))
        test = f", test from {self.found.test_from}" if self.found.test_from else ""
        return [
            f"wrote {self.path}: {space}, {self.found.steps} time steps{test}, "
            f"{len(self.spec['data']['inputs'])} inputs, target {target}",
            f"next: {self.next}",
        ]


def is_numeric(dtype: Any) -> bool:
    """A dtype a search can read (as :func:`hpctune.data.check_variables` accepts)."""
    dtype = np.dtype(dtype)
    number = np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)
    return number and not np.issubdtype(dtype, np.complexfloating)


def inspect_data(patterns: Sequence[str]) -> Found:
    """Open the data lazily, as a run does, and read what a spec needs: metadata only."""
    probe = DataSpec.model_construct(paths=list(patterns))
    try:
        paths = resolve_paths(probe)
        ds = open_dataset(probe, paths)
    except DataError as exc:
        raise DataError("DATA", exc.message) from None
    with ds:
        time = _time_dim(ds)
        space = _space_dims(ds, time)
        candidates, groups, others = [], [], {}
        for name, var in ds.data_vars.items():
            dims = tuple(map(str, var.dims))
            if set(dims) == {*space, time} and is_numeric(var.dtype):
                candidates.append(str(name))
            elif set(dims) == set(space) and (
                np.issubdtype(var.dtype, np.integer) or np.issubdtype(var.dtype, np.bool_)
            ):
                groups.append(str(name))
            elif set(dims) == {*space, time}:
                others[str(name)] = f"dtype {var.dtype}"
            else:
                others[str(name)] = f"dims ({', '.join(dims)})"
        times = np.sort(np.asarray(ds[time].values)) if time in ds.coords else None
        steps = int(ds.sizes[time])
        test_from, test_steps = _test_period(times)
        return Found(
            paths=tuple(paths),
            space=space,
            space_shape=tuple(int(ds.sizes[d]) for d in space),
            time=time,
            steps=steps,
            candidates=tuple(candidates),
            groups=tuple(groups),
            others=others,
            test_from=test_from,
            test_steps=test_steps,
        )


def _time_dim(ds: Any) -> str:
    """The dim with a date coordinate (one named as in :data:`TIME_NAMES` first), else the
    first dim named so."""
    dims = [str(d) for d in ds.dims]
    dated = [d for d in dims if d in ds.coords and np.issubdtype(ds[d].dtype, np.datetime64)]
    named = [n for n in TIME_NAMES if n in dims]
    for choice in ([d for d in dated if d in named], dated, named):
        if choice:
            return choice[0]
    raise DataError(
        "DATA", f"no time dimension (one with dates, or named time); dims: {listing(dims)}"
    )


def _space_dims(ds: Any, time: str) -> tuple[str, ...]:
    """The other dims of the numeric variables along ``time``, in the file's order: the most
    common set (several dims, e.g. lat and lon, are stacked into cells)."""
    found: Counter[tuple[str, ...]] = Counter()
    for var in ds.data_vars.values():
        dims = tuple(str(d) for d in var.dims)
        if time in dims and len(dims) > 1 and is_numeric(var.dtype):
            found[tuple(d for d in dims if d != time)] += 1
    if not found:
        raise DataError(
            "DATA",
            f"no numeric variable along {time!r} and a space dimension; "
            f"variables: {listing(ds.data_vars)}",
        )
    return max(found, key=lambda dims: (found[dims], len(dims)))


def _test_period(times: np.ndarray | None) -> tuple[str | None, int]:
    """The start of the last ~:data:`TEST_FRACTION` of the (sorted) time steps, as the date
    its first step is on (the next day when that day has training steps too; the step's own
    time when there is no next day),
    and the steps it holds; None without dates or with fewer than two steps."""
    if times is None or times.size < 2 or not np.issubdtype(times.dtype, np.datetime64):
        return None, 0
    first = times.size - max(1, round(TEST_FRACTION * times.size))
    day = times[first].astype("datetime64[D]")
    if day <= times[first - 1]:  # the day began in the training steps: from the next one
        day = day + np.timedelta64(1, "D")
    if day <= times[-1]:
        return str(day), int(np.sum(times >= day))
    start = times[first].astype("datetime64[s]")
    return str(start), int(np.sum(times >= start))


def starter_spec(
    found: Found, spec_path: Path, patterns: Sequence[str], overrides: Iterable[str] = ()
) -> dict[str, Any]:
    """The spec as a mapping: the target is ``data.target`` when ``overrides`` set it (and it
    then leaves the inputs, unless they are overridden too)."""
    stem = Path(patterns[0]).name.split(".")[0]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "job"
    base = spec_path.resolve().parent
    shown = [p if os.path.isabs(p) else os.path.relpath(os.path.abspath(p), base) for p in patterns]
    data: dict[str, Any] = {
        "paths": shown[0] if len(shown) == 1 else shown,
        "space": found.space[0] if len(found.space) == 1 else list(found.space),
        "time": found.time,
        "inputs": list(found.candidates),
        "target": None,
        "chunk": 500,
    }
    if found.test_from:
        data["test"] = {"from": found.test_from}
    spec: dict[str, Any] = {
        "name": name,
        "data": data,
        "partition": {"by": "cell"},
        "search": copy.deepcopy(SEARCH),
        "cluster": {"mode": "local"},
        "output": "results/{name}",
    }
    overrides = list(overrides)
    for override in overrides:
        apply_override(spec, override)
    data = spec.get("data") if isinstance(spec.get("data"), dict) else {}
    target = data.get("target")
    inputs_given = any(o.split("=", 1)[0].strip() == "data.inputs" for o in overrides)
    if target is not None and not inputs_given and isinstance(data.get("inputs"), list):
        targets = target if isinstance(target, list) else [target]  # several: data.target=[a,b]
        for name in targets:
            if name not in found.candidates:
                raise DataError("data.target", _not_a_candidate(name, found))
        data["inputs"] = [v for v in data["inputs"] if v not in targets]
    return spec


def _not_a_candidate(target: Any, found: Found) -> str:
    dims = ", ".join([*found.space, found.time])
    return f"no numeric variable {target!r} along ({dims}); candidates: {listing(found.candidates)}"


def check_spec(spec: dict[str, Any], found: Found) -> None:
    """Check the spec's schema as ``validate`` will, with a stand-in target when none is
    chosen yet (so a bad ``--set`` is refused before anything is written)."""
    probe = copy.deepcopy(spec)
    data = probe.get("data")
    if isinstance(data, dict) and data.get("target") is None:
        inputs = data.get("inputs") or []
        if len(found.candidates) < 2:
            raise DataError(
                "DATA",
                f"{len(found.candidates)} numeric variable(s) along "
                f"({', '.join([*found.space, found.time])}): a spec needs inputs and a target",
            )
        data["target"] = inputs[-1] if len(inputs) > 1 else "_"
        data["inputs"] = inputs[:-1] if len(inputs) > 1 else inputs
    from_mapping(probe)


def render(spec: dict[str, Any], found: Found) -> str:
    """The spec as YAML with a comment on each key (:data:`COMMENTS`) and a header."""
    candidates = ", ".join(found.candidates)
    notes = dict(COMMENTS)
    notes["data.space"] = (
        "the cell dimension"
        if len(found.space) == 1
        else f"dims stacked into {found.cells} cells (C order)"
    )
    if spec.get("data", {}).get("target") is None:
        notes["data.target"] = f"CHOOSE one of: {candidates} (and delete it from inputs)"
    else:
        notes["data.target"] = f"the variable to predict; candidates: {candidates}"
    if found.groups:
        notes["partition.by"] += f"; here: {', '.join(found.groups)}"
    header = [
        f"# A starter spec written by hpctune init from {', '.join(_names(found.paths))}:",
        f"# {found.cells} cells ({' x '.join(found.space)}), {found.steps} steps of "
        f"{found.time!r}. Check every key, then validate and run it.",
    ]
    if not found.test_from:
        header.append("# No test period: the time coordinate holds no dates.")
    if found.others:
        shown = ", ".join(f"{k} ({why})" for k, why in list(found.others.items())[:20])
        dims = ", ".join([*found.space, found.time])
        header.append(f"# Not inputs (an input is a number along {dims}): {shown}")
    body = _lines(spec, notes, 0, "")
    return "\n".join([*header, *body]) + "\n"


FLOW = {"data.test", "search.params", "search.cv"}
"""Mappings written on one line, as in ``jobs/example.yaml``."""


def _lines(mapping: dict[str, Any], notes: dict[str, str], depth: int, prefix: str) -> list[str]:
    lines = []
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        pad = "  " * depth
        if isinstance(value, dict) and value and dotted not in FLOW:
            lines.append(_noted(f"{pad}{key}:", notes.get(dotted)))
            lines.extend(_lines(value, notes, depth + 1, f"{dotted}."))
        else:
            lines.append(_noted(f"{pad}{_yaml(key)}: {_yaml(value)}", notes.get(dotted)))
    return lines


def _yaml(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31, sort_keys=False)
    return text.strip().removesuffix("\n...").strip()


def _noted(line: str, note: str | None) -> str:
    return f"{line.ljust(34)}  # {note}" if note else line


def _names(paths: Sequence[str]) -> list[str]:
    shown = [Path(p).name for p in paths[:3]]
    return shown + ([f"{len(paths) - 3} more"] if len(paths) > 3 else [])


def write_starter(
    patterns: Sequence[str],
    out: str | Path = "job.yaml",
    *,
    target: str | None = None,
    force: bool = False,
    overrides: Iterable[str] = (),
) -> Starter:
    """Read the data's metadata and write the starter spec to ``out``; refuse to overwrite
    a file unless ``force``. Nothing is written when the data or an override is refused."""
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"-o: {path} is a folder; name the spec file to write")
    if path.exists() and not force:
        raise UsageError(f"-o: {path} exists; --force overwrites it")
    if not patterns:
        raise UsageError("DATA: name the data file(s) (a path or a glob)")
    found = inspect_data(patterns)
    if target is not None and target not in found.candidates:
        raise DataError("--target", _not_a_candidate(target, found))
    extra = [f"data.target={target}"] if target is not None else []
    spec = starter_spec(found, path, patterns, [*overrides, *extra])
    check_spec(spec, found)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, render(spec, found).encode())
    return Starter(path=path, found=found, spec=spec, next=_next(path, spec, found))


def _next(path: Path, spec: dict[str, Any], found: Found) -> str:
    shown = str(path) if " " not in str(path) else f"'{path}'"
    if spec.get("data", {}).get("target") is None:
        return (
            f"choose data.target in {shown} (one of: {', '.join(found.candidates)}) and delete "
            f"it from data.inputs, then: hpctune validate {shown}"
        )
    return f"hpctune validate {shown} && hpctune run {shown}"
