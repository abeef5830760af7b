"""The ``scheduler`` section: the batch system, its resources and the directives a site adds.

What each batch system reserves and the longest grace it accepts come from its module, through
:mod:`hpctune.schedulers.registry`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_serializer, field_validator

from ..schedulers.base import Scheduler
from ..schedulers.registry import DEFAULT_KIND, KINDS, get_scheduler
from ..units import duration, parse_memory, parse_walltime
from .fields import SpecModel, as_list, check_line, check_name

ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DIRECTIVE_PATTERN = re.compile(r"^-{1,2}[A-Za-z][A-Za-z0-9_-]*([= ][^\n\r\x00]*)?$")


def _scheduler(info: ValidationInfo) -> Scheduler | None:
    """The scheduler of the ``kind`` validated before (None where it was refused)."""
    kind = info.data.get("kind")
    return get_scheduler(kind) if kind in KINDS else None


class SchedulerSpec(SpecModel):
    """The batch job: its kind (:data:`~hpctune.schedulers.registry.KINDS`) and resources."""

    kind: Literal[KINDS] = DEFAULT_KIND  # type: ignore[valid-type]
    nodes: int = Field(default=1, ge=1)
    cores_per_node: int = Field(default=1, ge=1)
    memory: int | None = None
    """Bytes per node (powers of two). Written as ``120GB`` / ``500MB`` / a number of GiB."""
    walltime: int = 3600
    """Seconds. Written in any form ``sbatch --time`` reads (:func:`parse_walltime`)."""
    queue: str | None = None
    account: str | None = None
    setup: list[str] = Field(default_factory=list)
    extra: list[str] = Field(default_factory=list)
    log_dir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    grace: int = Field(default=120, ge=0)
    """Seconds before the walltime at which the job is asked to stop and requeue."""

    _normalise = field_validator("setup", "extra", mode="before")(as_list)

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
        return None if value is None else check_name(value)

    @field_validator("setup")
    @classmethod
    def _setup(cls, value: list[str]) -> list[str]:
        return [check_line(str(line)) for line in value]

    @field_validator("extra")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        for directive in value:
            check_line(directive)
            if not DIRECTIVE_PATTERN.match(directive):
                raise ValueError(
                    f"each entry must be a scheduler option such as --gres=gpu:1; got {directive!r}"
                )
        return value

    @field_validator("extra")
    @classmethod
    def _extra_not_reserved(cls, value: list[str], info: ValidationInfo) -> list[str]:
        scheduler = _scheduler(info)
        for directive in value:
            try:
                shlex.split(directive)
            except ValueError:
                raise ValueError(
                    f"{directive!r} has an unmatched quote, which "
                    f"{scheduler.submit_program if scheduler else 'a batch system'} refuses"
                ) from None
            key = scheduler.reserved_key(directive) if scheduler else None
            if key:
                raise ValueError(
                    f"{directive!r} is written by hpctune from {key}; set that instead"
                )
        return value

    @field_validator("grace")
    @classmethod
    def _grace(cls, value: int, info: ValidationInfo) -> int:
        walltime = info.data.get("walltime")
        scheduler = _scheduler(info)
        bound = scheduler.max_grace if scheduler else None
        if bound is not None and value > bound:
            raise ValueError(f"must be at most {bound} seconds; got {value}")
        if value and walltime is not None and value >= walltime:
            raise ValueError(
                f"must be shorter than the walltime ({walltime} s), to leave time to work; "
                f"got {value}"
            )
        return value

    @field_validator("log_dir")
    @classmethod
    def _log_dir(cls, value: str | None) -> str | None:
        return None if value is None else check_line(value)

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
            checked[key] = check_line(str(val))
        return checked
