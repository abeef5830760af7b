"""Rendered scripts compared with expected files: one per template flavour (tests/golden/),
and the ready-to-submit scripts in sbatch/, rendered from jobs/.

After an intended change to a template, refresh the expected files and review the diff:

    HPCTUNE_UPDATE_GOLDEN=1 python3 -m pytest tests/test_render_golden.py
    git diff tests/golden sbatch
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

from hpctune.schedulers.registry import KINDS, SCHEDULERS
from hpctune.spec import load_spec
from hpctune.submission.render import ArrayPart, render_script

GOLDEN = Path(__file__).resolve().parent / "golden"
SBATCH = ROOT / "sbatch"
JOBS = ROOT / "jobs"
UPDATE = os.environ.get("HPCTUNE_UPDATE_GOLDEN") == "1"
REFRESH = "refresh with: HPCTUNE_UPDATE_GOLDEN=1 python3 -m pytest tests/test_render_golden.py"

#: A spec that sets every scheduler key, written to jobs/golden.yaml of a temporary project.
GOLDEN_SPEC = {
    "name": "golden",
    "data": {"paths": "../data/cells.nc", "inputs": ["x1", "x2"], "target": "y"},
    "search": {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [0.1, 1.0]}},
    "scheduler": {
        "nodes": 2,
        "cores_per_node": 16,
        "memory": "60GB",
        "walltime": "1-12:00:00",
        "queue": "normal",
        "account": "proj-42",
        "setup": ["module load 2024", "source $HOME/venvs/hpctune/bin/activate"],
        "env": {"OMP_NUM_THREADS": 1, "NOTE": "it's $HOME"},
        "grace": 300,
    },
    "output": "../results/{name}",
}

#: The array part of each kind's golden array script (default: tasks from slice 10 of 25).
ARRAY_PARTS = {"pbs": ArrayPart(offset=0, size=4, slices=4), "torque": ArrayPart(0, 4, 4)}

#: file name -> (scheduler kind, step, array part): a plain and an array script of every
#: scheduler, and SLURM's merge job.
VARIANTS = {
    **{
        name: variant
        for kind in KINDS
        for name, variant in (
            (f"{kind}.sh", (kind, "run", None)),
            (f"{kind}-array.sh", (kind, "run", ARRAY_PARTS.get(kind, ArrayPart(10, 10, 25)))),
        )
    },
    "slurm-merge.sh": ("slurm", "merge", None),
}


def check(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
        return
    assert path.exists(), f"{path} is missing; {REFRESH}"
    expected = path.read_text()
    assert text == expected, f"{path} differs from what the templates render now; {REFRESH}"


def render_golden(project: Path, kind: str, step: str, array: ArrayPart | None) -> str:
    spec = {**GOLDEN_SPEC, "scheduler": {**GOLDEN_SPEC["scheduler"], "kind": kind}}
    spec["scheduler"]["extra"] = list(SCHEDULERS[kind].example_directives)
    (project / "jobs").mkdir(exist_ok=True)
    path = project / "jobs" / "golden.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return render_script(
        load_spec(path),
        step=step,  # type: ignore[arg-type]
        array=array,
        overrides=["search.seed=7"],
        relative_to=project,
    )


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_golden(tmp_path: Path, name: str) -> None:
    check(GOLDEN / name, render_golden(tmp_path, *VARIANTS[name]))


def scheduler_jobs() -> list[Path]:
    """The specs in jobs/ that name a scheduler: each has its script in sbatch/."""
    found = []
    for path in sorted(JOBS.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        if isinstance(spec, dict) and "scheduler" in spec:
            found.append(path)
    return found


@pytest.mark.parametrize("spec", scheduler_jobs(), ids=lambda p: p.name)
def test_sbatch_folder_in_sync_with_jobs(spec: Path) -> None:
    script = render_script(load_spec(spec), relative_to=ROOT)
    check(SBATCH / f"{spec.stem}.sh", script)


def test_sbatch_folder_has_no_stale_scripts() -> None:
    expected = {f"{spec.stem}.sh" for spec in scheduler_jobs()}
    stale = sorted(p.name for p in SBATCH.glob("*.sh") if p.name not in expected)
    if UPDATE:
        for name in stale:
            (SBATCH / name).unlink()
        return
    assert not stale, f"sbatch/ holds scripts of no spec in jobs/: {stale}; {REFRESH}"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_expected_scripts_pass_bash_n() -> None:
    scripts = sorted(GOLDEN.glob("*.sh")) + sorted(SBATCH.glob("*.sh"))
    assert scripts
    for script in scripts:
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"
