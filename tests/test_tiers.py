"""The test tiers: ``pytest`` deselects the tests marked full and says so; ``--full`` and
``HPCTUNE_FULL=1`` run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SAMPLE = """
import pytest


def test_fast():
    pass


@pytest.mark.full
def test_slow():
    pass


@pytest.mark.parametrize("case", ["quick", pytest.param("long", marks=pytest.mark.full)])
def test_cases(case):
    pass
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = --strict-markers -p no:cacheprovider\n"
        "markers =\n    full: the full tier\n"
    )
    return tmp_path


def run_pytest(folder: Path, *args: str, full_env: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HPCTUNE_FULL"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    if full_env:
        env["HPCTUNE_FULL"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def passed(output: str) -> list[str]:
    return sorted(
        line.split("::", 1)[1] for line in output.splitlines() if line.startswith("PASSED")
    )


def test_the_default_tier_deselects_the_full_tests_and_says_how_to_run_them(project):
    proc = run_pytest(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert passed(proc.stdout) == ["test_cases[quick]", "test_fast"]
    lines = proc.stdout.splitlines()
    assert "2 passed, 2 deselected" in lines[-1]
    assert (
        "fast tier: 2 test(s) of the full tier deselected; run them with pytest --full "
        "(or HPCTUNE_FULL=1)"
    ) in lines
    assert "SKIPPED" not in proc.stdout


@pytest.mark.parametrize("how", ["option", pytest.param("environment", marks=pytest.mark.full)])
def test_full_runs_every_test(project, how):
    proc = run_pytest(project, *(["--full"] if how == "option" else []), full_env=how != "option")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert passed(proc.stdout) == [
        "test_cases[long]",
        "test_cases[quick]",
        "test_fast",
        "test_slow",
    ]
    assert "deselected" not in proc.stdout
