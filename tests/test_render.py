"""Job scripts: template lookup, filters, safe values, and scripts that bash accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

from hpctune.errors import SpecError, TemplateError
from hpctune.schedulers.pbs import pbs_memory, pbs_time
from hpctune.schedulers.registry import KINDS
from hpctune.schedulers.slurm import slurm_memory, slurm_time
from hpctune.spec import load_spec
from hpctune.submission.render import ArrayPart, render_script, template_dirs

BASH = shutil.which("bash") or "/bin/bash"


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    data = tmp_path / "cells.nc"
    synthetic(cells=4, steps=60).to_netcdf(data)
    spec = synthetic_spec(data)
    spec["scheduler"] = {
        "kind": "slurm",
        "nodes": 2,
        "cores_per_node": 4,
        "memory": "6GB",
        "walltime": "1-00:30:00",
        "queue": "debug",
        "account": "proj-1",
        "setup": ["module load 2024", 'echo "setting up"'],
        "extra": ["--constraint=haswell"],
        "env": {"OMP_NUM_THREADS": 1},
    }
    return write_spec(tmp_path, spec)


def bash_n(script: str, tmp_path: Path) -> None:
    path = tmp_path / "script.sh"
    path.write_text(script)
    proc = subprocess.run([BASH, "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + script


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("seconds", "slurm", "pbs"),
    [
        (59, "00:00:59", "00:00:59"),
        (3600, "01:00:00", "01:00:00"),
        (86400 + 1800, "1-00:30:00", "24:30:00"),
        (10 * 86400 + 61, "10-00:01:01", "240:01:01"),
    ],
)
def test_walltime_formats(seconds: int, slurm: str, pbs: str) -> None:
    assert slurm_time(seconds) == slurm
    assert pbs_time(seconds) == pbs


@pytest.mark.parametrize(
    ("size", "slurm", "pbs"),
    [
        (6 * 2**30, "6G", "6gb"),
        (1536 * 2**20, "1536M", "1536mb"),
        (2 * 2**40, "2T", "2tb"),
        (2**30 + 1, "1025M", "1025mb"),  # rounded up to whole MiB
    ],
)
def test_memory_formats(size: int, slurm: str, pbs: str) -> None:
    assert slurm_memory(size) == slurm
    assert pbs_memory(size) == pbs


# --------------------------------------------------------------------------- flavours


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "variant",
    ["run", "array", "single-slice", "merge"],
)
@pytest.mark.parametrize("relative", [False, True])
def test_every_flavour_passes_bash_n(
    job_file: Path, tmp_path: Path, kind: str, variant: str, relative: bool
) -> None:
    job = load_spec(job_file)
    array = {"array": ArrayPart(10, 5, 16), "single-slice": ArrayPart(15, 1, 16)}.get(variant)
    script = render_script(
        job,
        kind=kind,
        step="merge" if variant == "merge" else "run",
        array=array,
        overrides=["search.seed=3", "data.chunk=2"],
        relative_to=tmp_path if relative else None,
    )
    bash_n(script, tmp_path)
    assert script.startswith("#!/bin/bash\n")
    if relative:
        assert str(tmp_path) not in script
    run_line = next(line for line in script.splitlines() if line.startswith("hpctune "))
    step = "merge" if variant == "merge" else "run"
    assert run_line.startswith(f"hpctune {step} ")
    assert "--set search.seed=3 --set data.chunk=2" in run_line
    if variant == "array":
        assert '--slice "$((10 + ' in run_line and ')/16"' in run_line
    elif variant == "single-slice":
        assert "--slice 15/16" in run_line
    else:
        assert "--slice" not in run_line


def test_slurm_directives(job_file: Path) -> None:
    script = render_script(load_spec(job_file))
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --job-name=synthetic",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=6G",
        "#SBATCH --time=1-00:30:00",
        "#SBATCH --partition=debug",
        "#SBATCH --account=proj-1",
        f"#SBATCH --output={job_file.parent}/out/synthetic/logs/%x-%j.out",
        "#SBATCH --open-mode=append",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@120",
        "#SBATCH --constraint=haswell",
    ]
    assert 'scontrol requeue "$SLURM_JOB_ID"' in script


def test_pbs_and_torque_resources(job_file: Path) -> None:
    job = load_spec(job_file)
    pbs = render_script(job, kind="pbs")
    assert "#PBS -l select=2:ncpus=4:mem=6gb\n" in pbs
    assert "#PBS -l walltime=24:30:00\n" in pbs
    torque = render_script(job, kind="torque")
    assert "#PBS -l nodes=2:ppn=4\n" in torque
    assert "#PBS -l mem=12gb\n" in torque  # Torque's mem is for the whole job
    assert "#PBS -t 0-2\n" in render_script(job, kind="torque", array=ArrayPart(0, 3, 3))
    assert "#PBS -J 0-2\n" in render_script(job, kind="pbs", array=ArrayPart(0, 3, 3))


@pytest.mark.parametrize(
    ("written", "slurm", "pbs"),
    [
        ("90", "01:30:00", "01:30:00"),  # M: sbatch --time=90 is 90 minutes
        ('"01:00"', "00:01:00", "00:01:00"),  # M:S: one minute
        ("1:00:00", "01:00:00", "01:00:00"),  # unquoted H:M:S (YAML's sexagesimal 3600)
        ('"1-12"', "1-12:00:00", "36:00:00"),  # D-H
        ('"2-03:04"', "2-03:04:00", "51:04:00"),  # D-H:M
    ],
)
def test_walltime_directives_keep_sbatch_meaning(
    job_file: Path, written: str, slurm: str, pbs: str
) -> None:
    job = load_spec(job_file, [f"scheduler.walltime={written}", "scheduler.grace=0"])
    assert f"#SBATCH --time={slurm}\n" in render_script(job)
    assert f"#PBS -l walltime={pbs}\n" in render_script(job, kind="pbs")
    assert f"#PBS -l walltime={pbs}\n" in render_script(job, kind="torque")


def test_no_walltime_signal_without_grace(job_file: Path) -> None:
    job = load_spec(job_file, ["scheduler.grace=0"])
    script = render_script(job)
    assert "--signal" not in script and "scontrol requeue" not in script
    assert "#SBATCH --requeue" in script


def test_merge_job_is_small_and_not_requeued(job_file: Path) -> None:
    script = render_script(load_spec(job_file), step="merge")
    assert "#SBATCH --job-name=synthetic-merge" in script
    assert "#SBATCH --nodes=1\n" in script and "#SBATCH --cpus-per-task=1\n" in script
    assert "--signal" not in script and "--requeue" not in script


# --------------------------------------------------------------------------- safety


def test_values_are_quoted_and_never_executed(tmp_path: Path) -> None:
    """Run the rendered script with a stand-in ``hpctune``: it gets the values verbatim."""
    marker = tmp_path / "executed"
    data = tmp_path / "cells.nc"
    synthetic(cells=2, steps=40).to_netcdf(data)
    folder = tmp_path / "it's a $(touch x) folder"
    folder.mkdir()
    spec = synthetic_spec(data)
    spec["scheduler"] = {
        "env": {"HOSTILE": f"$(touch {marker}); `touch {marker}`"},
        "log_dir": str(tmp_path / "logs"),
    }
    job_path = write_spec(folder, spec, name="job.yaml")
    overrides = [f"search.seed=1 $(touch {marker})", "name=it's"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args_file = tmp_path / "args"
    (bin_dir / "hpctune").write_text(
        f'#!/bin/bash\nprintf "%s\\n" "$@" > {args_file}\nprintf "%s" "$HOSTILE" >> {args_file}\n'
    )
    (bin_dir / "hpctune").chmod(0o755)
    script = render_script(load_spec(job_path), overrides=overrides, workdir=folder)
    path = tmp_path / "job.sh"
    path.write_text(script)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run([BASH, str(path)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    lines = args_file.read_text().split("\n")
    assert lines[:6] == ["run", str(job_path), "--set", overrides[0], "--set", overrides[1]]
    assert lines[6] == f"$(touch {marker}); `touch {marker}`"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("name=$(touch {marker})", "name"),
        ('scheduler.queue="debug\\n#SBATCH --wrap=touch {marker}"', "scheduler.queue"),
        ("scheduler.account=proj;touch {marker}", "scheduler.account"),
        ('scheduler.walltime="99:99:99:99"', "scheduler.walltime"),
        ("scheduler.walltime=2:00:00:00", "scheduler.walltime"),
        ("scheduler.memory=lots", "scheduler.memory"),
        ('scheduler.env={{"A": "x\\ny"}}', "scheduler.env"),
        ('scheduler.setup=["module load x\\ntouch {marker}"]', "scheduler.setup"),
        ('scheduler.extra=["--time=5"]', "scheduler.extra"),
        ('scheduler.extra=["--comment=it\'s"]', "scheduler.extra"),
        ('scheduler.extra=["--gres=gpu:1\\n#SBATCH --wrap=x"]', "scheduler.extra"),
        ("scheduler.grace=90000", "scheduler.grace"),
        ("scheduler.kind=no-such-system", "scheduler.kind"),
        ("scheduler.log_dir=logs with space", "scheduler.log_dir"),
        ("search.seed=1\n#SBATCH --wrap=touch {marker}", "--set"),  # YAML reads 1 (and a comment)
    ],
)
@pytest.mark.parametrize("command", ["render", "submit"])
def test_hostile_values_exit_2_naming_the_key(
    job_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    override: str,
    key: str,
    command: str,
) -> None:
    marker = tmp_path / "executed"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("sbatch", "qsub", "scontrol"):
        (bin_dir / program).write_text(f"#!/bin/bash\ntouch {marker}\necho 1\n")
        (bin_dir / program).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = hpctune(capsys, command, job_file, "--set", override.format(marker=marker))
    assert result.code == 2, result
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"hpctune: error: {key}: ")
    assert not marker.exists()
    assert not (job_file.parent / "out").exists()


def test_output_folder_with_spaces_needs_a_plain_log_dir(tmp_path: Path) -> None:
    data = tmp_path / "cells.nc"
    synthetic(cells=2, steps=40).to_netcdf(data)
    job_path = write_spec(tmp_path, synthetic_spec(data, output="my results/{name}"))
    with pytest.raises(SpecError, match=r"^scheduler\.log_dir: the folder .* set scheduler"):
        render_script(load_spec(job_path))
    job = load_spec(job_path, [f"scheduler.log_dir={tmp_path / 'logs'}"])
    assert "#SBATCH --output=" in render_script(job)


# --------------------------------------------------------------------------- templates


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given, from_env, config = tmp_path / "given", tmp_path / "env", tmp_path / "config"
    given.mkdir()
    monkeypatch.setenv("HPCTUNE_TEMPLATE_DIR", str(from_env))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    folders = template_dirs([given])
    assert folders[:3] == [given, from_env, config / "hpctune" / "templates"]
    assert (folders[3] / "base.sh.j2").is_file()
    with pytest.raises(TemplateError, match="--template-dir: no such folder"):
        template_dirs([tmp_path / "missing"])


def site_template(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "slurm.sh.j2").write_text(
        '{% extends "hpctune/slurm.sh.j2" %}\n'
        '{% set hpctune = "python3 -m hpctune" %}\n'
        "{% block setup %}\n"
        "module load site-python/3.11\n"
        "{{ super() }}"
        "{% endblock %}\n"
    )
    return folder


@pytest.mark.parametrize("where", ["option", "env", "config"])
def test_site_template_extends_the_shipped_one(
    job_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    option = None
    if where == "option":
        option = [site_template(tmp_path / "site")]
    elif where == "env":
        monkeypatch.setenv("HPCTUNE_TEMPLATE_DIR", str(site_template(tmp_path / "site")))
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
        site_template(tmp_path / "cfg" / "hpctune" / "templates")
    script = render_script(load_spec(job_file), template_dir=option)
    assert "module load site-python/3.11\nmodule load 2024\n" in script
    assert "\npython3 -m hpctune run " in script
    assert "#SBATCH --nodes=2" in script
    bash_n(script, tmp_path)
    # the other flavours still come from the package
    assert "python3 -m" not in render_script(load_spec(job_file), kind="pbs", template_dir=option)


def test_template_errors_are_one_line(
    job_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "slurm.sh.j2").write_text(
        '{% extends "hpctune/slurm.sh.j2" %}{% block setup %}{{ nope }}{% endblock %}'
    )
    result = hpctune(capsys, "render", job_file, "--template-dir", site)
    assert result.code == 2
    assert "'nope' is undefined" in result.err and len(result.err.strip().splitlines()) == 1
    (site / "slurm.sh.j2").write_text("{% if %}")
    result = hpctune(capsys, "render", job_file, "--template-dir", site)
    assert result.code == 2 and "line 1" in result.err
    (site / "slurm.sh.j2").write_text('{% extends "nowhere.sh.j2" %}')
    result = hpctune(capsys, "render", job_file, "--template-dir", site)
    assert result.code == 2 and "'nowhere.sh.j2'" in result.err and str(site) in result.err


# --------------------------------------------------------------------------- the command


def test_render_command(job_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = hpctune(capsys, "render", job_file, "--scheduler", "pbs")
    assert result.code == 0 and result.out.startswith("#!/bin/bash\n#PBS -N synthetic\n")
    target = tmp_path / "job.sh"
    result = hpctune(
        capsys,
        "render",
        job_file,
        "-o",
        target,
        "--relative-to",
        tmp_path,
        "--set",
        "search.seed=5",
    )
    assert result.code == 0 and result.out == ""
    text = target.read_text()
    assert 'cd "$SLURM_SUBMIT_DIR"' in text
    assert "\nhpctune run job.yaml --set search.seed=5 &\n" in text
    assert "#SBATCH --output=out/synthetic/logs/%x-%j.out" in text
    assert os.access(target, os.X_OK)
