"""hpctune submit, status and cancel against the real local SLURM (tests/slurm/up.sh).

Each test runs the ``hpctune`` command as a user would, in a folder of its own; the jobs run
``hpctune run`` / ``hpctune merge`` inside their allocations on the emulated nodes. Searches
are tiny (Ridge, or a slow-enough SVR where a test needs time to act) and Dask binds to
127.0.0.1 (cluster.mode local).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import slurmtools
import xarray as xr
import yaml
from helpers import REAL_DATA, synthetic

from hpctune.output.journal import read_journal
from hpctune.spec import load_spec
from hpctune.submission.render import ArrayPart, render_script

pytestmark = [pytest.mark.slurm, pytest.mark.full]

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT = 240.0
"""Seconds a test waits for its jobs: the four emulated CPUs run on two real ones and other
tests' jobs may be queued ahead."""
REQUEUE_SETTLE = 2.0
"""Seconds to leave a requeued job pending before letting it start at once."""


# --------------------------------------------------------------------------- helpers


def hpctune(
    *args: Any, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "hpctune", *[str(a) for a in args]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"hpctune {args} exited {proc.returncode}: {proc.stderr}")
    return proc


def quick_spec(data: Path, **scheduler: Any) -> dict[str, Any]:
    """A Ridge search with two candidates: seconds per job, most of it Python starting."""
    inputs = ["TG1", "WG1"] if data.name == REAL_DATA.name else ["x1", "x2", "x3"]
    return {
        "name": "quick",
        "data": {
            "paths": str(data),
            "inputs": inputs,
            "target": "sig" if inputs[0] == "TG1" else "y",
        },
        "search": {
            "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.linear_model.Ridge"],
            "params": {"ridge__alpha": [0.1, 1.0]},
            "cv": {"kind": "kfold", "splits": 2},
            "min_samples": 20,
        },
        "cluster": {"mode": "local", "workers": 1},
        "scheduler": {
            "kind": "slurm",
            "cores_per_node": 1,
            "memory": "1GB",
            "walltime": "00:10:00",
            "queue": "debug",
            **scheduler,
        },
        "output": "out",
    }


def slow_spec(data: Path, **scheduler: Any) -> dict[str, Any]:
    """An SVR search of about two seconds per partition on :func:`slow_data`."""
    spec = quick_spec(data, **scheduler)
    spec["name"] = "slow"
    spec["search"].update(
        estimator=["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
        params={"svr__C": [1.0, 10.0]},
        cv={"kind": "kfold", "splits": 3},
    )
    return spec


MARKED = 3
"""The partition of :func:`held_data` whose fits wait for the test (tests_support.WaitOnMarker)."""


def held_data(path: Path, cells: int = 8) -> Path:
    """Small synthetic cells; cell MARKED carries WaitOnMarker's marker."""
    ds = synthetic(cells=cells, steps=200)
    ds["x1"][MARKED, :] = 555.0
    ds.to_netcdf(path)
    return path


def held_spec(data: Path, release: Path, **scheduler: Any) -> dict[str, Any]:
    """A quick Ridge search whose partition MARKED waits until the file ``release`` exists: the
    job's run reaches that partition in seconds and then holds, so a walltime or a signal ends
    it there, however fast or slow the machine."""
    spec = quick_spec(data, **scheduler)
    spec["name"] = "held"
    spec["search"].update(
        estimator=[
            "tests_support.WaitOnMarker",
            "sklearn.preprocessing.StandardScaler",
            "sklearn.linear_model.Ridge",
        ],
        params={"waitonmarker__release": [str(release)], "ridge__alpha": [0.1, 1.0]},
    )
    path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    spec["scheduler"]["env"] = {"PYTHONPATH": path}  # the jobs import tests_support
    return spec


def write(folder: Path, spec: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def cells12(tmp_path: Path) -> Path:
    path = tmp_path / "cells12.nc"
    synthetic(cells=12, steps=200).to_netcdf(path)
    return path


@pytest.fixture
def slow_data(tmp_path: Path) -> Path:
    path = tmp_path / "slow.nc"
    synthetic(cells=8, steps=3000).to_netcdf(path)
    return path


def submit(job: Path, *args: Any, tracker: Any) -> dict[str, Any]:
    """``hpctune submit --json``; the spec's scheduler.env (PYTHONPATH) applies here too."""
    env = {**os.environ, **yaml.safe_load(job.read_text())["scheduler"].get("env", {})}
    result = json.loads(hpctune("submit", job, "--json", *args, cwd=job.parent, env=env).stdout)
    for job_id in result["job_ids"]:
        tracker.track(job_id)
    return result


def results(job: Path) -> xr.Dataset:
    with xr.open_dataset(load_spec(job).output_dir / "results.nc") as ds:
        return ds.load()


def journal_indices(job: Path) -> Counter[int]:
    """How often each partition was recorded, over every journal of the output."""
    seen: Counter[int] = Counter()
    for path in (load_spec(job).output_dir / "parts").glob("*.log"):
        records, _torn = read_journal(path)
        seen.update(int(r["index"]) for r in records)
    return seen


def logs(job: Path) -> str:
    """The job's logs in the order the jobs ran: by job id as a number (``x-999.out`` before
    ``x-1000.out``)."""
    folder = load_spec(job).output_dir / "logs"
    paths = sorted(folder.glob("*.out"), key=lambda p: [int(n) for n in re.findall(r"\d+", p.stem)])
    return "\n".join(p.read_text(errors="replace") for p in paths)


def wait_for(predicate: Any, timeout: float, what: str, poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def start_now_after_requeue(job_id: str, timeout: float = 60.0) -> None:
    """A requeued job waits ~2 min (BeginTime); let it start at once, as slurmtools explains."""

    def pending_for_begin_time() -> bool:
        info = slurmtools.job_info(job_id)
        return (
            bool(info)
            and info[0].get("JobState") == "PENDING"
            and (info[0].get("Reason") == "BeginTime")
        )

    wait_for(pending_for_begin_time, timeout, f"job {job_id} back in the queue after its requeue")
    # slurmd refuses to launch a job whose credential is from the same second as the kill of
    # its previous run ("Job credential revoked"): the two minutes of BeginTime avoid that.
    time.sleep(REQUEUE_SETTLE)
    slurmtools.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"])


# --------------------------------------------------------------------------- one job


def test_submit_runs_a_job_that_writes_results(slurm_jobs: Any, tmp_path: Path) -> None:
    job = write(tmp_path / "one", quick_spec(REAL_DATA))
    started = time.monotonic()
    submitted = submit(job, tracker=slurm_jobs)
    assert submitted["job_ids"] == [submitted["job_id"]]
    job_id = submitted["job_id"]
    assert slurm_jobs.wait(job_id, timeout=JOB_TIMEOUT) == {job_id: "COMPLETED"}
    print(f"one job, submit to COMPLETED: {time.monotonic() - started:.1f} s")

    ds = results(job)
    assert ds.sizes["space"] == 5
    assert list(ds["status"].values) == ["ok"] * 5
    status = json.loads(hpctune("status", job, "--json", cwd=tmp_path).stdout)
    assert status["partitions"] == {
        "total": 5,
        "ok": 5,
        "skipped": 0,
        "failed": 0,
        "pending": 0,
    }
    (entry,) = status["jobs"]
    assert entry["job_id"] == job_id and entry["role"] == "run"
    assert (entry["state"], entry["phase"], entry["exit_code"]) == ("COMPLETED", "done", 0)
    recorded = json.loads((load_spec(job).output_dir / "jobs.json").read_text())
    assert [j["job_id"] for j in recorded["jobs"]] == [job_id]
    text = hpctune("status", job, cwd=tmp_path).stdout
    assert "5 ok, 0 skipped, 0 failed, 0 pending" in text and "COMPLETED" in text


def test_scheduler_errors_show_command_exit_code_and_output(tmp_path: Path) -> None:
    job = write(tmp_path / "bad", quick_spec(REAL_DATA, queue="nosuchqueue"))
    proc = hpctune("submit", job, cwd=job.parent, check=False)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("hpctune: error: command failed (exit code 1): sbatch --parsable ")
    assert "invalid partition specified: nosuchqueue" in line


# --------------------------------------------------------------------------- arrays


def test_array_of_three_tasks_and_a_merge_job(
    slurm_jobs: Any, tmp_path: Path, cells12: Path
) -> None:
    job = write(tmp_path / "array", quick_spec(cells12))
    started = time.monotonic()
    submitted = submit(job, "--array", "3", tracker=slurm_jobs)
    array_id, merge_id = submitted["job_ids"]
    assert submitted["job_id"] == merge_id
    assert slurm_jobs.wait(merge_id, timeout=JOB_TIMEOUT) == {merge_id: "COMPLETED"}
    print(f"--array 3 on 12 cells, submit to merged: {time.monotonic() - started:.1f} s")

    tasks = slurmtools.job_states(array_id)
    assert tasks == {f"{array_id}_{i}": "COMPLETED" for i in range(3)}
    merge = slurmtools.job_info(merge_id)[0]
    assert merge["Dependency"] in ("(null)", f"afterany:{array_id}_*(finished)")
    ds = results(job)
    assert list(ds["status"].values) == ["ok"] * 12
    assert journal_indices(job) == Counter(range(12))  # each cell computed exactly once
    log_text = logs(job)
    assert log_text.count("4 ok, 0 skipped, 0 failed") == 3  # each task did its own four

    status = json.loads(hpctune("status", job, "--json", cwd=tmp_path).stdout)
    assert [(j["role"], j["state"]) for j in status["jobs"]] == [
        ("array", "COMPLETED"),
        ("merge", "COMPLETED"),
    ]
    assert sorted(status["jobs"][0]["tasks"]) == [f"{array_id}_{i}" for i in range(3)]
    assert status["partitions"]["ok"] == 12


def test_arrays_above_max_array_size_are_split(
    slurm_jobs: Any, slurm_cluster: Any, tmp_path: Path, cells12: Path
) -> None:
    assert slurm_cluster.max_array_size == 10
    job = write(tmp_path / "split", quick_spec(cells12))
    started = time.monotonic()
    proc = hpctune("submit", job, "--array", "12", "--json", cwd=job.parent)
    submitted = json.loads(proc.stdout)
    for job_id in submitted["job_ids"]:
        slurm_jobs.track(job_id)
    first, second, merge_id = submitted["job_ids"]
    assert [j["array"] for j in submitted["jobs"]] == [
        {"offset": 0, "size": 10, "slices": 12},
        {"offset": 10, "size": 2, "slices": 12},
        None,
    ]
    assert slurm_jobs.wait(merge_id, timeout=2 * JOB_TIMEOUT) == {merge_id: "COMPLETED"}
    print(f"--array 12 (10 + 2 tasks) on 12 cells: {time.monotonic() - started:.1f} s")
    assert set(slurmtools.job_states(first)) == {f"{first}_{i}" for i in range(10)}
    assert set(slurmtools.job_states(second)) == {f"{second}_0", f"{second}_1"}
    ds = results(job)
    assert list(ds["status"].values) == ["ok"] * 12
    assert journal_indices(job) == Counter(range(12))


# --------------------------------------------------------------------------- dependency, cancel


def test_after_waits_for_another_job(slurm_jobs: Any, tmp_path: Path, cells12: Path) -> None:
    first = write(tmp_path / "first", quick_spec(cells12))
    second = write(tmp_path / "second", quick_spec(cells12))
    first_id = submit(first, tracker=slurm_jobs)["job_id"]
    slurmtools.run(["scontrol", "hold", first_id])  # so that it cannot end before we look
    second_id = submit(second, "--after", first_id, tracker=slurm_jobs)["job_id"]
    info = slurmtools.job_info(second_id)[0]
    assert info["Dependency"].startswith(f"afterok:{first_id}")
    assert (info["JobState"], info["Reason"]) == ("PENDING", "Dependency")
    status = json.loads(hpctune("status", second, "--json", cwd=tmp_path).stdout)
    assert (status["jobs"][0]["phase"], status["jobs"][0]["reason"]) == ("pending", "Dependency")
    slurmtools.run(["scontrol", "release", first_id])
    slurm_jobs.wait(second_id, timeout=JOB_TIMEOUT)
    a, b = slurmtools.job_info(first_id)[0], slurmtools.job_info(second_id)[0]
    assert (a["JobState"], b["JobState"]) == ("COMPLETED", "COMPLETED")
    assert b["StartTime"] >= a["EndTime"]
    assert list(results(second)["status"].values) == ["ok"] * 12


def test_cancel_stops_the_job_and_keeps_finished_partitions(
    slurm_jobs: Any, tmp_path: Path, slow_data: Path
) -> None:
    job = write(tmp_path / "cancel", slow_spec(slow_data))
    job_id = submit(job, tracker=slurm_jobs)["job_id"]
    wait_for(lambda: sum(journal_indices(job).values()) >= 1, JOB_TIMEOUT, "a first partition")
    proc = hpctune("cancel", job, "--yes", cwd=tmp_path)
    assert proc.stdout.strip() == f"cancelled: {job_id}"
    states = slurm_jobs.wait(job_id, timeout=60)
    assert states == {job_id: "CANCELLED"}
    status = json.loads(hpctune("status", job, "--json", cwd=tmp_path).stdout)
    assert (status["jobs"][0]["state"], status["jobs"][0]["phase"]) == ("CANCELLED", "done")
    assert status["partitions"]["ok"] >= 1 and status["partitions"]["total"] == 8
    assert hpctune("cancel", job, "--yes", cwd=tmp_path).stdout.startswith("nothing to cancel")


# --------------------------------------------------------------------------- preemption, walltime


def test_walltime_warning_stops_requeues_and_resumes(
    slurm_jobs: Any, tmp_path: Path, slow_data: Path
) -> None:
    """USR1 to the batch shell (what --signal=B:USR1@grace sends): the run stops, keeps its
    partitions, the job requeues itself and its second run resumes."""
    job = write(tmp_path / "requeue", slow_spec(slow_data, grace=60))
    job_id = submit(job, tracker=slurm_jobs)["job_id"]
    wait_for(lambda: sum(journal_indices(job).values()) >= 1, JOB_TIMEOUT, "a first partition")
    slurmtools.cancel(job_id, signal="USR1", batch=True)
    start_now_after_requeue(job_id)
    assert slurm_jobs.wait(job_id, timeout=JOB_TIMEOUT) == {job_id: "COMPLETED"}

    info = slurmtools.job_info(job_id)[0]
    assert info["Restarts"] == "1"
    log_text = logs(job)
    assert "stopped by SIGUSR1" in log_text
    assert f"requeueing job {job_id}" in log_text
    resumed = [line for line in log_text.splitlines() if "resumed) of 8 partitions" in line][-1]
    assert "(0 resumed)" not in resumed  # the second run did not start over
    assert list(results(job)["status"].values) == ["ok"] * 8
    assert all(count == 1 for count in journal_indices(job).values())


def test_scontrol_requeue_mid_run_resumes(slurm_jobs: Any, tmp_path: Path, slow_data: Path) -> None:
    """``scontrol requeue``, as a preemption does: SLURM ends the running job (TERM to the
    batch shell, passed on to the run) and queues it again; its next run resumes."""
    job = write(tmp_path / "preempted", slow_spec(slow_data))
    job_id = submit(job, tracker=slurm_jobs)["job_id"]
    wait_for(lambda: sum(journal_indices(job).values()) >= 2, JOB_TIMEOUT, "two partitions")
    slurmtools.run(["scontrol", "requeue", job_id])
    start_now_after_requeue(job_id)
    assert slurm_jobs.wait(job_id, timeout=JOB_TIMEOUT) == {job_id: "COMPLETED"}

    assert slurmtools.job_info(job_id)[0]["Restarts"] == "1"
    summaries = [line for line in logs(job).splitlines() if "resumed) of 8 partitions" in line]
    assert "(0 resumed)" not in summaries[-1]  # the run after the requeue did not start over
    assert list(results(job)["status"].values) == ["ok"] * 8
    assert all(count == 1 for count in journal_indices(job).values())


def test_a_job_past_its_walltime_resumes_when_submitted_again(
    slurm_jobs: Any, tmp_path: Path
) -> None:
    """No warning signal (grace 0): SLURM kills the job at its walltime (TIMEOUT), here while
    partition MARKED waits. What it finished is kept; submitting the same job again, with more
    time as a user would (the walltime does not define the results), computes only the rest."""
    release = tmp_path / "release"
    data = held_data(tmp_path / "held.nc")
    job = write(tmp_path / "timeout", held_spec(data, release, walltime="00:01:00", grace=0))
    first = submit(job, tracker=slurm_jobs)["job_id"]
    assert slurm_jobs.wait(first, timeout=JOB_TIMEOUT) == {first: "TIMEOUT"}
    done = journal_indices(job)
    assert done, "no partition finished within the walltime"
    assert MARKED not in done, "the waiting partition finished"
    done_before = sum(done.values())
    assert not (load_spec(job).output_dir / "results.nc").exists()

    release.touch()
    longer = ("--set", "scheduler.walltime=00:05:00")
    second = submit(job, *longer, tracker=slurm_jobs)["job_id"]
    assert slurm_jobs.wait(second, timeout=JOB_TIMEOUT) == {second: "COMPLETED"}
    summary = [line for line in logs(job).splitlines() if "resumed) of 8 partitions" in line]
    assert f"({done_before} resumed)" in summary[-1]
    assert list(results(job)["status"].values) == ["ok"] * 8
    assert all(count == 1 for count in journal_indices(job).values())


@pytest.mark.slurm_slow
def test_real_walltime_signal_requeues(slurm_jobs: Any, tmp_path: Path) -> None:
    """A 2 min walltime with grace 60: SLURM itself sends USR1 60 s before the end (at its next
    check of time limits) while partition MARKED waits; the run stops and the job requeues
    itself. Let go, its second run resumes and finishes: one requeue, whatever the speed."""
    release = tmp_path / "release"
    data = held_data(tmp_path / "held.nc")
    job = write(tmp_path / "walltime", held_spec(data, release, walltime="00:02:00", grace=60))
    job_id = submit(job, tracker=slurm_jobs)["job_id"]

    # the first run is stopped by SLURM's USR1 and requeues its job (not TIMEOUT: that would
    # never come back to the queue)
    def requeued_or_ended() -> dict[str, str] | None:
        info = slurmtools.job_info(job_id)[0]
        done = info.get("Restarts", "0") != "0" or info["JobState"] in slurmtools.TERMINAL_STATES
        return info if done else None

    first_run = wait_for(requeued_or_ended, JOB_TIMEOUT, f"job {job_id} requeued or ended")
    assert first_run["Restarts"] == "1", first_run
    release.touch()
    start_now_after_requeue(job_id)
    assert slurm_jobs.wait(job_id, timeout=JOB_TIMEOUT) == {job_id: "COMPLETED"}

    info = slurmtools.job_info(job_id)[0]
    assert info["Restarts"] == "1"
    log_text = logs(job)
    assert "stopped by SIGUSR1" in log_text
    assert f"requeueing job {job_id}" in log_text
    summaries = [line for line in log_text.splitlines() if "resumed) of 8 partitions" in line]
    assert "(0 resumed)" not in summaries[-1]  # the run after the requeue did not start over
    assert list(results(job)["status"].values) == ["ok"] * 8
    assert all(count == 1 for count in journal_indices(job).values())


# --------------------------------------------------------------------------- Torque, --test-only


def test_torque_flavour_through_qsub(slurm_jobs: Any, tmp_path: Path, cells12: Path) -> None:
    job = write(tmp_path / "torque", quick_spec(cells12, kind="torque"))
    submitted = submit(job, tracker=slurm_jobs)
    job_id = submitted["job_id"]
    assert submitted["jobs"][0]["command"][0] == "qsub"
    assert slurm_jobs.wait(job_id, timeout=JOB_TIMEOUT) == {job_id: "COMPLETED"}
    assert list(results(job)["status"].values) == ["ok"] * 12
    log_file = load_spec(job).output_dir / "logs" / f"quick-{job_id}.log"
    assert "12 ok, 0 skipped, 0 failed" in log_file.read_text()
    status = json.loads(hpctune("status", job, "--json", cwd=tmp_path).stdout)
    entry = status["jobs"][0]
    assert (entry["state"], entry["phase"], entry["source"]) == ("C", "done", "qstat")


def test_rendered_scripts_pass_sbatch_test_only(tmp_path: Path, cells12: Path) -> None:
    spec = quick_spec(cells12, nodes=2, cores_per_node=2, extra=['--comment="a test"'])
    spec["scheduler"]["env"] = {"NOTE": "$(touch never) ; `id`"}
    spec["scheduler"]["setup"] = ["echo setting up"]
    job = load_spec(write(tmp_path / "test-only", spec), ["search.seed=1"])
    variants = {
        "run": render_script(job, overrides=["search.seed=1"]),
        "array": render_script(job, array=ArrayPart(3, 4, 7)),
        "single-slice": render_script(job, array=ArrayPart(6, 1, 7)),
        "merge": render_script(job, step="merge"),
        "sbatch/slurm.sh": (ROOT / "sbatch" / "slurm.sh").read_text(),
    }
    for name, script in variants.items():
        path = tmp_path / f"{name.replace('/', '-')}.sh"
        path.write_text(script)
        proc = slurmtools.run(["sbatch", "--test-only", str(path)], check=False, cwd=tmp_path)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        assert "to start at" in proc.stderr, f"{name}: {proc.stderr}"
    assert not (tmp_path / "never").exists()


def test_status_of_a_job_slurm_has_forgotten(tmp_path: Path, cells12: Path) -> None:
    job = write(tmp_path / "forgotten", quick_spec(cells12))
    output = load_spec(job).output_dir
    output.mkdir(parents=True)
    record = {"job_id": "999999", "scheduler": "slurm", "role": "run", "submission": 1}
    (output / "jobs.json").write_text(json.dumps({"name": "quick", "jobs": [record]}))
    status = json.loads(hpctune("status", job, "--json", cwd=tmp_path).stdout)
    assert status["jobs"][0]["phase"] == "unknown"
    assert status["partitions"]["pending"] == 12
    assert np.isclose(status["partitions"]["total"], 12)
