"""The report of several targets (``data.target`` a list): results.nc's ``test_*`` variables
along ``target`` become one variable per target, ``test_<metric>_<target>``, each drawn as a
map of its own like a single target's ``test_<metric>``."""

from __future__ import annotations

from typing import Any

from ..output.targets import TARGET_DIM


def split_targets(results: Any) -> Any:
    """``results`` with each variable along ``target`` split into one per target (and the
    ``target`` coordinate gone); ``results`` itself when it has no ``target`` dim."""
    if TARGET_DIM not in results.dims:
        return results
    names = [str(t) for t in results[TARGET_DIM].values]
    out = results.copy()
    for name in [str(n) for n, v in results.data_vars.items() if TARGET_DIM in v.dims]:
        for position, target in enumerate(names):
            one = results[name].isel({TARGET_DIM: position}, drop=True)
            long_name = results[name].attrs.get("long_name", name)
            out[f"{name}_{target}"] = one.assign_attrs(long_name=f"{long_name} ({target})")
        out = out.drop_vars(name)
    return out.drop_vars(TARGET_DIM)


def first_target_metric(results: Any, name: str) -> str | None:
    """``name`` (``test_r2``) itself if ``results`` has it, else that of the first of several
    targets (``test_r2_sig``), else None."""
    if name in results:
        return name
    targets = str(results.attrs.get("hpctune_targets", "")).split()
    first = f"{name}_{targets[0]}" if targets else None
    return first if first is not None and first in results else None
