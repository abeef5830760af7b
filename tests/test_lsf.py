"""IBM Spectrum LSF, checked without LSF: no LSF runs here.

What is checked, as PBS is: the job scripts against golden files (tests/golden/lsf*.sh, from
test_render_golden.py), ``bsub``/``bjobs``/``bkill``/``bparams`` as stand-in scripts on PATH that
print outputs in LSF's documented formats (tests/golden/bjobs/) and record how they were called,
the environment of an LSF job (``LSB_JOBID``, ``LSB_DJOB_HOSTFILE``, ``LSB_MCPU_HOSTS``,
``LSB_HOSTS``), dask-jobqueue's ``LSFCluster`` built (no job submitted), and a whole run in mode
``allocation`` with a stand-in ``blaunch`` that starts the real workers on this machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dask
import pytest
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune
from standin_launcher import assert_worked_on_every_host, run_in_standin_job

from hpctune.cluster import login_node
from hpctune.cluster.jobqueue import build, import_dask_jobqueue, plan
from hpctune.cluster.security import write_credentials
from hpctune.errors import SchedulerError, SpecError
from hpctune.schedulers.jobs import Dependency
from hpctune.schedulers.launch import Layout, WorkerSpec
from hpctune.schedulers.lsf import (
    LSF,
    BlaunchLauncher,
    lsf_memory,
    lsf_time,
    parse_bjobs_json,
    parse_bjobs_text,
)
from hpctune.schedulers.registry import KINDS, detect_allocation, get_scheduler, scheduler_for
from hpctune.spec import load_spec

TESTS = Path(__file__).resolve().parent
BJOBS = TESTS / "golden" / "bjobs"
IDS = ["4711", "4712", "4713", "4714", "4720", "4721", "99"]


def fake_program(bin_dir: Path, name: str, body: str) -> Path:
    """A stand-in for an LSF command; it appends its arguments to ``<name>.calls``."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    calls = bin_dir / f"{name}.calls"
    path.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> {calls}\n{body}\n')
    path.chmod(0o755)
    return calls


def calls(bin_dir: Path, name: str) -> list[str]:
    path = bin_dir / f"{name}.calls"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def lsf_job(tmp_path: Path, **changes) -> Path:
    data = tmp_path / "cells.nc"
    if not data.exists():
        synthetic(cells=6, steps=60).to_netcdf(data)
    spec = synthetic_spec(data, scheduler__kind="lsf", **changes)
    return write_spec(tmp_path, spec)


# --------------------------------------------------------------------------- spec and scripts


def test_lsf_is_a_registered_kind() -> None:
    assert "lsf" in KINDS
    assert get_scheduler("lsf").template == "lsf.sh.j2"


@pytest.mark.parametrize(
    ("directive", "key"),
    [
        ("-n 4", "scheduler.nodes and cores_per_node"),
        ('-R "span[ptile=4]"', "scheduler.nodes and cores_per_node"),
        ('-R "select[avx2] rusage[mem=2GB]"', "scheduler.memory"),
        ("-W 10", "scheduler.walltime"),
        ("-q long", "scheduler.queue"),
        ("-P proj", "scheduler.account"),
        ("-oo x.out", "scheduler.log_dir"),
        ("-wt 5", "scheduler.grace"),
        ("-w done(1)", "submit --after"),
    ],
)
def test_reserved_directives_name_their_key(tmp_path: Path, directive: str, key: str) -> None:
    with pytest.raises(SpecError, match=rf"is written by hpctune from {key}"):
        load_spec(lsf_job(tmp_path, scheduler__extra=[directive]))


def test_other_directives_pass(tmp_path: Path) -> None:
    job = load_spec(lsf_job(tmp_path, scheduler__extra=['-R "select[avx2]"', "-B"]))
    assert job.scheduler.kind == "lsf"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60, "0:01"), (61, "0:02"), (120, "0:02"), (3600, "1:00"), (90061, "25:02")],
)
def test_lsf_time_rounds_up_to_minutes(seconds: int, text: str) -> None:
    assert lsf_time(seconds) == text


def test_lsf_memory_keeps_its_unit() -> None:
    assert (lsf_memory(4 * 2**30), lsf_memory(1536 * 2**20), lsf_memory(10**9)) == (
        "4GB",
        "1536MB",
        "954MB",
    )


def test_render_and_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = lsf_job(tmp_path, scheduler__nodes=2, scheduler__cores_per_node=4)
    result = hpctune(capsys, "render", path, "--scheduler", "lsf")
    assert result.code == 0, result.err
    assert '#BSUB -R "span[ptile=4]"' in result.out and "#BSUB -n 8" in result.out
    result = hpctune(capsys, "submit", path, "--dry-run")
    assert result.code == 0, result.err
    assert result.out.rstrip().endswith("&& bsub < synthetic.1.run.sh")


# --------------------------------------------------------------------------- bsub, bjobs, bkill


@pytest.mark.parametrize(
    "stdout",
    [
        "Job <4711> is submitted to queue <normal>.\n",
        "Job <4711> is submitted to default queue <normal>.\n",
        "Warning: no -W given\nJob <4711> is submitted to queue <q>.\n",
    ],
)
def test_bsub_job_ids(stdout: str) -> None:
    assert LSF().parse_job_id(stdout, ["bsub"]) == ("4711", None)


def test_bsub_unexpected_output() -> None:
    with pytest.raises(SchedulerError, match=r"expected 'Job <ID> is submitted"):
        LSF().parse_job_id("Request aborted by esub.\n", ["bsub", "<", "x.sh"])


def test_submit_command_reads_the_script_on_stdin() -> None:
    after = [Dependency("afterok", ("41",)), Dependency("afterany", ("42", "43"))]
    assert LSF().submit_command("a.sh", after=after) == [
        "bsub",
        "-w",
        "done(41) && ended(42) && ended(43)",
        "<",
        "a.sh",
    ]


def test_bjobs_json_and_text_agree() -> None:
    data = parse_bjobs_json((BJOBS / "bjobs-json.json").read_text())
    text = parse_bjobs_text((BJOBS / "bjobs-noheader.txt").read_text())
    assert list(data) == list(text) == IDS[:-1]
    for job_id, tasks in data.items():
        assert list(tasks) == list(text[job_id])
        for task, record in tasks.items():
            for field in ("STAT", "EXIT_CODE", "PEND_REASON"):
                assert record[field] == text[job_id][task][field], (task, field)
    assert list(data["4720"]) == ["4720[1]", "4720[2]", "4720[3]"]


def bjobs_printing(bin_dir: Path, json_too: bool) -> None:
    """A bjobs that prints the samples (the JSON one only where -json is asked for)."""
    json_branch = (
        f"cat {BJOBS / 'bjobs-json.json'}; exit 255"
        if json_too
        else 'echo "-json: Illegal option" >&2; exit 255'
    )
    fake_program(
        bin_dir,
        "bjobs",
        f'case " $* " in *" -json "*) {json_branch};; esac\n'
        f'cat {BJOBS / "bjobs-noheader.txt"}; echo "Job <99> is not found" >&2; exit 255',
    )


@pytest.mark.parametrize("json_too", [True, False], ids=["json", "text"])
def test_states(fake_bin: Path, json_too: bool) -> None:
    bjobs_printing(fake_bin, json_too)
    states = LSF().states([(i, None) for i in IDS])
    summary = {i: (s.state, s.phase, s.exit_code) for i, s in states.items()}
    assert summary == {
        "4711": ("RUN", "running", None),
        "4712": ("PEND", "pending", None),
        "4713": ("DONE", "done", 0),
        "4714": ("EXIT", "done", 3),
        "4720": ("RUN", "running", 1),
        "4721": ("EXIT", "done", 2),
        "99": ("UNKNOWN", "unknown", None),
    }
    assert states["4712"].reason == "New job is waiting for scheduling;"
    assert states["4721"].tasks == {"4721[1]": "DONE", "4721[2]": "EXIT"}
    asked = calls(fake_bin, "bjobs")
    assert asked[0] == "-a -json -o jobid jobindex stat exit_code pend_reason " + " ".join(IDS)
    assert len(asked) == (1 if json_too else 2)


def fake_lsf(bin_dir: Path) -> None:
    """bsub hands out ids 100, 101 ... and keeps each script it read on stdin; bparams allows
    arrays of 2; bjobs says every job is pending; bkill succeeds."""
    counter = bin_dir / "counter"
    counter.write_text("100")
    fake_program(
        bin_dir,
        "bsub",
        f'n=$(cat {counter}); echo $((n + 1)) > {counter}; cat > "{bin_dir}/script-$n.sh"\n'
        'echo "Job <$n> is submitted to queue <normal>."',
    )
    fake_program(
        bin_dir, "bparams", 'echo "System default parameters:"; echo "  MAX_JOB_ARRAY_SIZE = 2"'
    )
    fake_program(
        bin_dir,
        "bjobs",
        'ids=(); for a in "$@"; do [[ $a =~ ^[0-9]+$ ]] && ids+=("$a"); done\n'
        'printf \'{"COMMAND":"bjobs","JOBS":%d,"RECORDS":[\' "${#ids[@]}"\n'
        'sep=; for i in "${ids[@]}"; do\n'
        '  printf \'%s{"JOBID":"%s","JOBINDEX":"0","STAT":"PEND","EXIT_CODE":"",'
        '"PEND_REASON":"Job dependency condition not satisfied;"}\' "$sep" "$i"; sep=,\n'
        "done; echo ']}'",
    )
    fake_program(bin_dir, "bkill", 'for i in "$@"; do echo "Job <$i> is being terminated"; done')


def test_submit_status_cancel(
    tmp_path: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_lsf(fake_bin)
    path = lsf_job(tmp_path)
    result = hpctune(capsys, "submit", path, "--array", "3", "--json")
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    assert printed["job_ids"] == ["100", "101", "102"]  # arrays of 2 and 1, then the merge
    assert calls(fake_bin, "bsub") == ["", "", "-w ended(100) && ended(101)"]
    first = (fake_bin / "script-100.sh").read_text()
    assert first.startswith('#!/bin/bash\n#BSUB -J "synthetic[1-2]"\n')
    assert '--slice "$((0 + (LSB_JOBINDEX - 1)))/3"' in first
    assert "--slice 2/3" in (fake_bin / "script-101.sh").read_text()
    recorded = json.loads((load_spec(path).output_dir / "jobs.json").read_text())
    assert recorded["jobs"][2]["command"] == [
        "bsub",
        "-w",
        "ended(100) && ended(101)",
        "<",
        "synthetic.1.merge.sh",
    ]

    result = hpctune(capsys, "status", path, "--json")
    assert result.code == 0, result.err
    jobs = json.loads(result.out)["jobs"]
    assert [(j["job_id"], j["state"], j["phase"]) for j in jobs] == [
        (i, "PEND", "pending") for i in ("100", "101", "102")
    ]
    result = hpctune(capsys, "cancel", path, "--yes")
    assert result.code == 0, result.err
    assert calls(fake_bin, "bkill") == ["100 101 102"]


# --------------------------------------------------------------------------- inside a job


@pytest.mark.parametrize(
    "variables",
    [
        {"LSB_DJOB_HOSTFILE": "hostfile"},
        {"LSB_MCPU_HOSTS": "cn01 2 cn02 2"},
        {"LSB_HOSTS": "cn01 cn01 cn02 cn02"},
    ],
    ids=["hostfile", "mcpu", "hosts"],
)
def test_detect_an_lsf_job(tmp_path: Path, variables: dict[str, str]) -> None:
    (tmp_path / "hostfile").write_text("cn01\ncn01\ncn02\ncn02\n")
    env = {"LSB_JOBID": "4711", **variables}
    if "LSB_DJOB_HOSTFILE" in env:
        env["LSB_DJOB_HOSTFILE"] = str(tmp_path / "hostfile")
    allocation = detect_allocation(env)
    assert allocation is not None
    assert (allocation.kind, allocation.job_id, allocation.hosts) == (
        "lsf",
        "4711",
        ("cn01", "cn02"),
    )
    assert (allocation.cpus, allocation.tasks, allocation.first_slots) == ((2, 2), 2, (0, 2))
    one_node = detect_allocation({"LSB_JOBID": "7", "LSB_MCPU_HOSTS": "cn01 16"})
    assert one_node is not None and not one_node.multi  # a one-node job runs local


def test_blaunch_starts_each_hosts_workers(fake_bin: Path) -> None:
    fake_program(fake_bin, "blaunch", "exit 0")
    allocation = detect_allocation({"LSB_JOBID": "1", "LSB_HOSTS": "cn01 cn01 cn02 cn02"})
    assert allocation is not None
    launcher = scheduler_for(allocation, "slurm").launcher(allocation)
    assert isinstance(launcher, BlaunchLauncher)
    layout = Layout(("cn01", "cn02"), (2, 2), 1, (None, None))
    commands = launcher.commands(layout, WorkerSpec("tls://10.0.0.1:8786", ()), {"A": "1"})
    assert [c.argv[:2] for c in commands] == [["blaunch", "cn01"], ["blaunch", "cn02"]]
    assert all("HPCTUNE_NODE_NAME=" + c.argv[1] in c.argv for c in commands)
    assert all(c.argv[-2:] == ["--nworkers", "2"] for c in commands)


def test_a_login_node_has_bsub(tmp_path: Path) -> None:
    fake_program(tmp_path / "bin", "bsub", "exit 1")
    env = {"PATH": str(tmp_path / "bin")}
    assert login_node(env) == "bsub on PATH, outside any batch job"
    assert login_node({**env, "LSB_JOBID": "4711"}) is None


def test_workers_start_on_every_host_through_blaunch(tmp_path: Path) -> None:
    """``blaunch HOST command``: the stand-in drops the host and runs the command here."""
    run = run_in_standin_job(
        tmp_path,
        "lsf",
        "blaunch",
        "shift",
        lambda hosts: {"LSB_JOBID": "4711", "LSB_DJOB_HOSTFILE": str(hosts)},
    )
    assert_worked_on_every_host(run)
    assert "allocation (lsf job 4711): 4 workers" in run.process.stderr
    assert [line.split()[0] for line in run.calls] == ["cn01", "cn02"]


# --------------------------------------------------------------------------- dask-jobqueue


def test_lsf_cluster_job_script(tmp_path: Path) -> None:
    import_dask_jobqueue()
    job = load_spec(
        synthetic_spec(
            tmp_path / "cells.nc",
            cluster__mode="jobqueue",
            cluster__interface="lo",
            scheduler__kind="lsf",
            scheduler__cores_per_node=4,
            scheduler__memory="4GB",
            scheduler__walltime="01:30:00",
            scheduler__queue="debug",
            scheduler__account="proj-1",
            scheduler__extra=['-R "select[avx2]"'],
        ),
        base_dir=tmp_path,
    )
    credentials = write_credentials(tmp_path)
    try:
        with dask.config.set({"jobqueue.lsf.lsf-units": "mb"}):
            settings = plan(job, credentials.security())
            assert settings.cluster_class == "LSFCluster"
            kw = settings.kwargs
            assert (kw["walltime"], kw["project"]) == ("1:30", "proj-1")
            # bsub < script, as hpctune submits (dask-jobqueue's default unless a user says)
            assert kw.get("use_stdin", dask.config.get("jobqueue.lsf.use-stdin")) is True
            assert "account" not in kw
            assert kw["local_directory"] == '"${TMPDIR:-/tmp}"'
            cluster = build(settings)
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    finally:
        credentials.remove()
    lines = script.splitlines()
    for directive in (
        "#BSUB -J synthetic-worker",
        "#BSUB -q debug",
        '#BSUB -P "proj-1"',
        "#BSUB -n 4",
        "#BSUB -W 1:30",
        '#BSUB -R "select[avx2]"',
    ):
        assert directive in lines, (directive, script)
    assert "hpctune.worker" in lines[-1]
