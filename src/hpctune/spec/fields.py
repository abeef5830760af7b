"""What every section of the job spec is built from: the frozen pydantic model that refuses
unknown keys, and the checks of names and single lines that several sections apply."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
"""A name that is safe as a file name, a job name and a scheduler queue or account."""


def as_list(value: Any) -> Any:
    """A single string as a one-item list: YAML's ``paths: a.nc`` reads as ``[a.nc]``."""
    return [value] if isinstance(value, str) else value


def check_target(value: Any) -> Any:
    """``data.target``: one variable name, or a list of distinct names (several targets, one
    model per partition predicting all of them)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a variable name or a list of them; got {value!r}")
    if not value:
        raise ValueError("must name at least one variable; got []")
    for name in value:
        if not isinstance(name, str) or not name:
            raise ValueError(f"must be a list of variable names; got {name!r} in it")
    duplicates = sorted({v for v in value if value.count(v) > 1})
    if duplicates:
        raise ValueError(f"names a target twice: {', '.join(duplicates)}")
    return list(value)


def check_name(value: str, what: str = "name") -> str:
    """``value`` if it matches :data:`NAME_PATTERN` and is not ``.`` or ``..``."""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise ValueError(
            f"must match [A-Za-z0-9._-]+ (letters, digits, '.', '_', '-'); got {value!r}"
        )
    if value in {".", ".."}:
        raise ValueError(f"must not be {value!r}")
    return value


def check_line(value: str) -> str:
    """``value`` if it is one line: it ends up in job scripts, where a newline starts a command."""
    if any(ch in value for ch in "\n\r\x00"):
        raise ValueError(f"must be a single line without newline or NUL characters; got {value!r}")
    return value


class SpecModel(BaseModel):
    """A section of the spec: frozen once validated, unknown keys refused (typos fail early),
    fields readable by their YAML alias (``from``) or their Python name."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
