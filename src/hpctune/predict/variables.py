"""The variables ``hpctune predict`` writes: ``prediction`` for a single target (a string
``data.target``), one variable named after each target when ``data.target`` is a list (the
model of a partition predicts them all, one column each, in the spec's order)."""

from __future__ import annotations

from typing import Any

from ..spec import DataSpec, Job

VARIABLE = "prediction"
"""The output variable of a single target."""


def variable_names(data: DataSpec) -> tuple[str, ...]:
    """The output's variables, in the order of the model's prediction columns."""
    return tuple(data.targets) if data.multi_target else (VARIABLE,)


def variable_attrs(job: Job, ds: Any) -> dict[str, dict[str, Any]]:
    """Each output variable's attributes: the target's ``long_name`` and ``units`` where the
    data ``ds`` has the target, and the job it came from."""
    common = {
        "hpctune_name": job.name,
        "hpctune_fingerprint": job.fingerprint(),
        "hpctune_target": " ".join(job.data.targets),
        "hpctune_inputs": " ".join(job.data.inputs),
    }
    attrs: dict[str, dict[str, Any]] = {}
    for name, target in zip(variable_names(job.data), job.data.targets, strict=True):
        source = ds[target].attrs if target in ds.variables else {}
        attrs[name] = {
            "long_name": f"{source.get('long_name', target)} predicted by each partition's best "
            "model",
            **({"units": source["units"]} if "units" in source else {}),
            **common,
        }
    return attrs
