"""Scheduler commands: job ids, qstat formats, errors, and submit/status/cancel on stand-ins.

The SLURM side runs against the real scheduler in tests/integration/; here PBS and Torque
commands are small stand-in scripts on PATH that print the samples in tests/golden/qstat/ and
record how they were called.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

from hpctune.errors import SchedulerError, UsageError
from hpctune.schedulers import Dependency, PBSPro, Slurm, Torque, get_scheduler, run_command
from hpctune.schedulers.jobs import JobState, summarise
from hpctune.schedulers.pbs import PHASE, parse_qstat_f, parse_qstat_json
from hpctune.schedulers.registry import KINDS
from hpctune.spec import load_spec
from hpctune.submission import array_parts
from hpctune.submission.render import ArrayPart

SAMPLES = Path(__file__).resolve().parent / "golden" / "qstat"


def fake_program(bin_dir: Path, name: str, body: str) -> Path:
    """A stand-in for a scheduler command; it appends its arguments to ``<name>.calls``."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    calls = bin_dir / f"{name}.calls"
    path.write_text(f'#!/bin/bash\necho "$*" >> {calls}\n{body}\n')
    path.chmod(0o755)
    return calls


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def calls(bin_dir: Path, name: str) -> list[str]:
    path = bin_dir / f"{name}.calls"
    return path.read_text().splitlines() if path.exists() else []


# --------------------------------------------------------------------------- job ids


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("1234\n", ("1234", None)),
        ("1234;hpc-cluster\n", ("1234", "hpc-cluster")),
        ("sbatch: warning: no time limit given\n77\n", ("77", None)),
    ],
)
def test_sbatch_parsable_ids(stdout: str, expected: tuple[str, str | None]) -> None:
    assert Slurm().parse_job_id(stdout, ["sbatch"]) == expected


@pytest.mark.parametrize("stdout", ["", "Submitted batch job 12\n", "12;bad cluster\n"])
def test_sbatch_unexpected_output(stdout: str) -> None:
    with pytest.raises(SchedulerError, match=r"sbatch --parsable x\.sh.*expected a job id"):
        Slurm().parse_job_id(stdout, ["sbatch", "--parsable", "x.sh"])


@pytest.mark.parametrize("stdout", ["4127.pbs01\n", "4130[].pbs01\n", "166\n"])
def test_qsub_ids(stdout: str) -> None:
    assert PBSPro().parse_job_id(stdout, ["qsub"]) == (stdout.strip(), None)


def test_submit_commands() -> None:
    after = [Dependency("afterok", ("41",)), Dependency("afterany", ("42", "43"))]
    assert Slurm().submit_command("a.sh", after=after, cluster="c1") == [
        "sbatch",
        "--parsable",
        "--clusters=c1",
        "--dependency=afterok:41,afterany:42:43",
        "a.sh",
    ]
    array = [Dependency("afterany", ("4130[].pbs01",))]
    assert PBSPro().submit_command("m.sh", after=array) == [
        "qsub",
        "-W",
        "depend=afterany:4130[].pbs01",
        "m.sh",
    ]
    assert Torque().submit_command("m.sh", after=array)[2] == "depend=afteranyarray:4130[].pbs01"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234", Dependency("afterok", ("1234",))),
        ("afterany:1234", Dependency("afterany", ("1234",))),
        ("afternotok:12:13", Dependency("afternotok", ("12", "13"))),
        ("4127.pbs01", Dependency("afterok", ("4127.pbs01",))),
    ],
)
def test_dependency_parse(text: str, expected: Dependency) -> None:
    assert Dependency.parse(text) == expected


@pytest.mark.parametrize("text", ["afterwards:12", "12;rm -rf ~", "$(id)", ""])
def test_dependency_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="--after"):
        Dependency.parse(text)


def test_array_parts_split_at_the_limit() -> None:
    assert array_parts(3, 10) == [ArrayPart(0, 3, 3)]
    assert array_parts(25, 10) == [
        ArrayPart(0, 10, 25),
        ArrayPart(10, 10, 25),
        ArrayPart(20, 5, 25),
    ]
    assert array_parts(11, 10)[-1] == ArrayPart(10, 1, 11)  # a plain job with --slice 10/11
    assert array_parts(5, None) == [ArrayPart(0, 5, 5)]


def test_unknown_scheduler() -> None:
    with pytest.raises(UsageError, match=f"available: {', '.join(KINDS)}$"):
        get_scheduler("no-such-batch-system")
    assert KINDS[:3] == ("slurm", "pbs", "torque")


# --------------------------------------------------------------------------- the runner


def test_missing_program_names_the_command() -> None:
    with pytest.raises(SchedulerError) as info:
        run_command(["hpctune-no-such-sbatch", "--parsable", "job.sh"])
    assert info.value.returncode is None
    assert str(info.value) == (
        "command failed (not found): hpctune-no-such-sbatch --parsable job.sh: "
        "hpctune-no-such-sbatch not found on PATH (is this a login node?)"
    )


def test_failing_command_shows_exit_code_and_output(fake_bin: Path) -> None:
    fake_program(
        fake_bin, "sbatch", 'echo "sbatch: error: invalid partition specified: x" >&2; exit 1'
    )
    with pytest.raises(SchedulerError) as info:
        run_command(["sbatch", "--parsable", "job.sh"])
    assert str(info.value) == (
        "command failed (exit code 1): sbatch --parsable job.sh: "
        "sbatch: error: invalid partition specified: x"
    )


# --------------------------------------------------------------------------- qstat formats


def test_pbspro_text_and_json_agree() -> None:
    text = parse_qstat_f((SAMPLES / "pbspro-qstat-fx.txt").read_text())
    data = parse_qstat_json((SAMPLES / "pbspro-qstat-fx.json").read_text())
    assert list(text) == list(data)
    for job_id, attributes in text.items():
        assert attributes["job_state"] == data[job_id]["job_state"]
        for key in ("Error_Path", "Output_Path", "comment"):
            if key in attributes:
                assert attributes[key] == data[job_id][key]
    assert text["4102.pbs01"]["comment"].endswith("and finished")
    assert text["4127.pbs01"]["Variable_List"].endswith("PBS_O_HOST=login01.cluster.example")


def test_torque_and_slurm_wrapper_formats() -> None:
    torque = parse_qstat_f((SAMPLES / "torque-qstat-f.txt").read_text())
    assert torque["5512.torque01.cluster.example"]["job_state"] == "C"
    assert torque["5512.torque01.cluster.example"]["exit_status"] == "0"
    assert torque["5513[1].torque01.cluster.example"]["job_array_id"] == "1"
    wrapper = parse_qstat_f((SAMPLES / "slurm-torque-qstat-f.txt").read_text())
    (attributes,) = wrapper.values()
    assert attributes["job_state"] == "R" and attributes["Resource_List.walltime"] == "00:30:00"


def qstat_printing(bin_dir: Path, sample: str, json_too: bool) -> None:
    """A qstat that prints a sample (the JSON one only when asked for -F json)."""
    json_branch = (
        f"cat {SAMPLES / 'pbspro-qstat-fx.json'}; exit 0"
        if json_too
        else 'echo "qstat: invalid option -- F" >&2; exit 2'
    )
    fake_program(
        bin_dir,
        "qstat",
        f'case " $* " in *" -F json "*) {json_branch};; esac\ncat {SAMPLES / sample}',
    )


@pytest.mark.parametrize("json_too", [True, False], ids=["json", "text"])
def test_pbspro_states(fake_bin: Path, json_too: bool) -> None:
    qstat_printing(fake_bin, "pbspro-qstat-fx.txt", json_too)
    jobs = [(i, None) for i in ("4127.pbs01", "4102.pbs01", "4103.pbs01", "4130[].pbs01", "99.x")]
    states = PBSPro().states(jobs)
    assert (states["4127.pbs01"].state, states["4127.pbs01"].phase) == ("R", "running")
    assert (states["4102.pbs01"].state, states["4102.pbs01"].phase) == ("F", "done")
    assert states["4102.pbs01"].exit_code == 0
    assert "finished" in (states["4102.pbs01"].reason or "")
    assert (states["4103.pbs01"].phase, states["4103.pbs01"].exit_code) == ("done", 3)
    array = states["4130[].pbs01"]
    assert (array.state, array.phase) == ("R", "running")
    assert array.tasks == {"4130[0].pbs01": "X", "4130[1].pbs01": "R", "4130[2].pbs01": "Q"}
    assert states["99.x"].phase == "unknown"
    first = calls(fake_bin, "qstat")[0]
    assert first.startswith("-f -x -t")


def test_torque_states(fake_bin: Path) -> None:
    fake_program(fake_bin, "qstat", f"cat {SAMPLES / 'torque-qstat-f.txt'}")
    states = Torque().states([("5512.torque01.cluster.example", None), ("5513[].torque01", None)])
    done = states["5512.torque01.cluster.example"]
    assert (done.state, done.phase, done.exit_code) == ("C", "done", 0)
    array = states["5513[].torque01"]
    assert array.phase == "running" and len(array.tasks) == 2
    assert calls(fake_bin, "qstat") == [
        "-f 5512.torque01.cluster.example",
        "-f -t 5513[].torque01",
    ]


def test_summarise_arrays() -> None:
    phase = {"COMPLETED": "done", "FAILED": "done", "RUNNING": "running", "PENDING": "pending"}

    def summary(*states: str) -> JobState:
        tasks = {f"7_{i}": s for i, s in enumerate(states)}
        return summarise("7", tasks, phase, "test", ok_states=["COMPLETED"])

    assert summary("COMPLETED", "RUNNING", "PENDING").state == "RUNNING"
    assert summary("COMPLETED", "PENDING").phase == "pending"
    assert summary("COMPLETED", "FAILED", "COMPLETED").state == "FAILED"
    assert summary("COMPLETED", "COMPLETED").state == "COMPLETED"
    assert PHASE["F"] == "done" and PHASE["B"] == "running"


# --------------------------------------------------------------------------- submit on stand-ins


@pytest.fixture
def pbs_job(tmp_path: Path) -> Path:
    data = tmp_path / "cells.nc"
    synthetic(cells=6, steps=60).to_netcdf(data)
    spec = synthetic_spec(data)
    spec["scheduler"] = {"kind": "pbs", "cores_per_node": 2, "walltime": "00:10:00"}
    return write_spec(tmp_path, spec)


def fake_pbs(bin_dir: Path) -> None:
    """qsub hands out ids 100.pbs01, 101[].pbs01 (arrays) ...; qstat knows none of them."""
    counter = bin_dir / "counter"
    counter.write_text("100")
    fake_program(
        bin_dir,
        "qsub",
        f"n=$(cat {counter}); echo $((n + 1)) > {counter}\n"
        'if grep -q "^#PBS -J" "${@: -1}"; then echo "$n[].pbs01"; else echo "$n.pbs01"; fi',
    )
    fake_program(bin_dir, "qstat", 'echo "qstat: Unknown Job Id $*" >&2; exit 153')
    fake_program(bin_dir, "qdel", "exit 0")


def test_submit_array_records_jobs(
    pbs_job: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_pbs(fake_bin)
    result = hpctune(capsys, "submit", pbs_job, "--array", "3", "--json", "--set", "search.seed=2")
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    assert printed["job_id"] == "101.pbs01"
    assert printed["job_ids"] == ["100[].pbs01", "101.pbs01"]
    assert calls(fake_bin, "qsub") == [
        "pbs_job.1.array.sh".replace("pbs_job", "synthetic"),
        "-W depend=afterany:100[].pbs01 synthetic.1.merge.sh",
    ]
    job = load_spec(pbs_job)
    recorded = json.loads((job.output_dir / "jobs.json").read_text())
    assert [j["role"] for j in recorded["jobs"]] == ["array", "merge"]
    assert recorded["jobs"][0]["array"] == {"offset": 0, "size": 3, "slices": 3}
    script = Path(recorded["jobs"][0]["script"])
    assert script.parent == job.log_dir
    text = script.read_text()
    assert "#PBS -J 0-2" in text
    assert '--set search.seed=2 --slice "$((0 + $PBS_ARRAY_INDEX))/3"' in text
    # a second submission gets new script names and is recorded after the first
    result = hpctune(capsys, "submit", pbs_job)
    assert result.code == 0 and result.out.strip() == "102.pbs01"
    recorded = json.loads((job.output_dir / "jobs.json").read_text())
    assert [j["submission"] for j in recorded["jobs"]] == [1, 1, 2]
    assert recorded["jobs"][2]["script"].endswith("synthetic.2.run.sh")


def test_status_and_cancel(
    pbs_job: Path,
    fake_bin: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_pbs(fake_bin)
    result = hpctune(capsys, "status", pbs_job, "--json")
    assert result.code == 0
    assert json.loads(result.out)["jobs"] == []
    assert json.loads(result.out)["partitions"] == {
        "total": 6,
        "ok": 0,
        "skipped": 0,
        "failed": 0,
        "pending": 6,
    }
    assert hpctune(capsys, "submit", pbs_job).code == 0
    # the job is queued: qstat says so
    fake_program(
        fake_bin,
        "qstat",
        "printf 'Job Id: 100.pbs01\\n    Job_Name = synthetic\\n    job_state = Q\\n'",
    )
    result = hpctune(capsys, "status", pbs_job)
    assert result.code == 0
    assert result.out.splitlines()[1].split() == ["100.pbs01", "run", "Q"]
    # cancel asks first
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    result = hpctune(capsys, "cancel", pbs_job)
    assert result.code == 1 and "aborted" in result.err
    assert calls(fake_bin, "qdel") == []
    result = hpctune(capsys, "cancel", pbs_job, "--yes")
    assert result.code == 0 and result.out.strip() == "cancelled: 100.pbs01"
    assert calls(fake_bin, "qdel") == ["100.pbs01"]


def test_submit_dry_run_writes_nothing(
    pbs_job: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_pbs(fake_bin)
    result = hpctune(capsys, "submit", pbs_job, "--dry-run", "--array", "2")
    assert result.code == 0, result.err
    assert result.out.count("#!/bin/bash\n") == 2
    assert "# submit: cd " in result.out
    assert "qsub -W 'depend=afterany:<job id of synthetic.1.array.sh>' synthetic.1.merge.sh" in (
        result.out
    )
    assert calls(fake_bin, "qsub") == []
    assert not load_spec(pbs_job).output_dir.exists()


def test_submit_errors(pbs_job: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_program(fake_bin, "qsub", 'echo "qsub: Unknown queue" >&2; exit 170')
    result = hpctune(capsys, "submit", pbs_job)
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        "hpctune: error: command failed (exit code 170): qsub synthetic.1.run.sh: "
        "qsub: Unknown queue"
    ]
    result = hpctune(capsys, "submit", pbs_job, "--array", "7")
    assert result.code == 2
    assert "--array 7: the job has 6 partition(s); use at most --array 6" in result.err
    result = hpctune(capsys, "submit", pbs_job, "--after", "$(id)")
    assert result.code == 2 and "--after" in result.err


def test_slurm_states_from_sacct_where_accounting_answers(fake_bin: Path) -> None:
    """A hand-made sample of ``sacct --parsable2`` output (the test cluster has no slurmdbd)."""
    fake_program(
        fake_bin,
        "sacct",
        "printf '%s\\n' '4242|COMPLETED|0:0' '4243_0|COMPLETED|0:0' '4243_1|FAILED|3:0' "
        "'4243_[2-4]|PENDING|0:0' '4244|CANCELLED by 1000|0:15'",
    )
    fake_program(fake_bin, "squeue", "exit 99")  # not asked: sacct knew every job
    states = Slurm().states([("4242", None), ("4243", None), ("4244", None)])
    assert (states["4242"].state, states["4242"].exit_code, states["4242"].source) == (
        "COMPLETED",
        0,
        "sacct",
    )
    assert (states["4243"].state, states["4243"].phase) == ("PENDING", "pending")
    assert states["4243"].tasks["4243_1"] == "FAILED"
    assert (states["4244"].state, states["4244"].phase) == ("CANCELLED", "done")
    (call,) = calls(fake_bin, "sacct")
    assert call.endswith("--format=JobID,State,ExitCode --jobs=4242,4243,4244")
    assert calls(fake_bin, "squeue") == []


def test_status_without_the_scheduler_still_counts_partitions(
    pbs_job: Path,
    fake_bin: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_pbs(fake_bin)
    assert hpctune(capsys, "submit", pbs_job).code == 0
    (fake_bin / "qstat").unlink()
    monkeypatch.setenv("PATH", str(fake_bin))  # a machine without qstat
    result = hpctune(capsys, "status", pbs_job, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["partitions"]["pending"] == 6
    (entry,) = report["jobs"]
    assert entry["phase"] == "unknown" and "qstat not found" in entry["reason"]
