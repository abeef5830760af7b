"""SLURM's compressed host lists and per-node counts, as its job variables hold them
(``SLURM_JOB_NODELIST=node[01-03,7]``, ``SLURM_JOB_CPUS_PER_NODE=32(x2),16``)."""

from __future__ import annotations

import re

from ..errors import AllocationError

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_CPUS = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


def expand_hostlist(text: str) -> list[str]:
    """SLURM's compressed host list: ``node[01-03,7],gpu5`` -> node01, node02, node03, node7, gpu5.

    Several bracket groups in one name (``r[1-2]n[1-2]``) expand as a product, like
    ``scontrol show hostnames`` does.
    """
    hosts: list[str] = []
    for item in _split_top_level(text):
        hosts.extend(_expand_one(item))
    return hosts


def _split_top_level(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def _expand_one(name: str) -> list[str]:
    open_at = name.find("[")
    if open_at < 0:
        return [name]
    close_at = name.find("]", open_at)
    if close_at < 0:
        raise AllocationError(f"malformed host list entry {name!r}")
    prefix, body, rest = name[:open_at], name[open_at + 1 : close_at], name[close_at + 1 :]
    values: list[str] = []
    for part in body.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            raise AllocationError(f"malformed range {part!r} in host list entry {name!r}")
        low, high = match.group(1), match.group(2) or match.group(1)
        width = len(low)
        values.extend(str(n).zfill(width) for n in range(int(low), int(high) + 1))
    return [prefix + value + tail for value in values for tail in _expand_one(rest)]


def expand_counts(text: str) -> list[int]:
    """SLURM's per-node counts: ``32(x2),16`` -> [32, 32, 16]."""
    counts: list[int] = []
    for part in text.split(","):
        match = _CPUS.match(part.strip())
        if not match:
            raise AllocationError(f"malformed CPU count {part!r} in {text!r}")
        counts.extend([int(match.group(1))] * int(match.group(2) or 1))
    return counts
