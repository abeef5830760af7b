"""Run the ``hpctune`` command in-process, as a user's shell would see it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hpctune.cli import main


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def hpctune(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    code = info.value.code if isinstance(info.value.code, int) else 1
    return Outcome(code=code, out=captured.out, err=captured.err)
