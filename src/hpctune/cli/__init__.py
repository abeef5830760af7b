"""The ``hpctune`` command line: the group and its error handling (``app``), the options the
commands share (``options``), and the commands, thin shells over :mod:`hpctune.api`
(``commands`` compute, ``batch`` goes through a batch system)."""

from .app import cli, main
from .options import echo, emit_json

__all__ = ["cli", "echo", "emit_json", "main"]
