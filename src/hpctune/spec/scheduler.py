"""The ``scheduler`` section: the batch system, its resources and the directives a site adds.

The tables of what each batch system reserves (``RESERVED_DIRECTIVES``) and the longest grace
it accepts (``MAX_SIGNAL_SECONDS``) are read by :class:`SchedulerSpec`'s checks.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_serializer, field_validator

from ..units import duration, parse_memory, parse_walltime
from .fields import SpecModel, as_list, check_line, check_name

ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DIRECTIVE_PATTERN = re.compile(r"^-{1,2}[A-Za-z][A-Za-z0-9_-]*([= ][^\n\r\x00]*)?$")


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


class SchedulerSpec(SpecModel):
    """``scheduler``: the batch system and the resources of the job scripts ``render`` and
    ``submit`` write; none of it changes results."""

    kind: Literal["slurm", "pbs", "torque"] = "slurm"
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
