"""The output folder's lock files: removed on every way a run ends, never at the cost of the
lock's guarantee (two runs on one output folder never both proceed)."""

from __future__ import annotations

import fcntl
import types
from pathlib import Path

import pytest
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune as hpctune_command

import hpctune
from hpctune.errors import OutputError
from hpctune.output import files as files_module
from hpctune.output.files import take_lock
from hpctune.output.folder import Store
from hpctune.spec import load_spec
from hpctune.submission import _locked_records


def lock_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*lock*"))


def test_the_last_holder_removes_the_lock_file(tmp_path):
    root = tmp_path / "out"
    for lock in Store(root).lock():
        lock.release()
    assert lock_files(root) == []
    slices = [Store(root).lock((i, 2)) for i in range(2)]
    assert lock_files(root) == [".lock", ".lock-slice-0-of-2", ".lock-slice-1-of-2"]
    for lock in slices[0]:
        lock.release()
    assert lock_files(root) == [".lock", ".lock-slice-1-of-2"]  # slice 1 holds .lock still
    with pytest.raises(OutputError, match="another hpctune run"):
        Store(root).lock()  # the whole run is still refused
    for lock in slices[1]:
        lock.release()
    assert lock_files(root) == []
    for lock in Store(root).lock():  # and the folder can be locked again
        lock.release()


def _fcntl_interleaved(operation: int, before) -> types.SimpleNamespace:
    """``fcntl`` for :mod:`hpctune.output.files`, which runs ``before`` just before the first
    ``flock`` that asks for ``operation``: what other processes did between this one's
    ``open`` and its ``flock``."""
    seen = []

    def flock(fd: int, asked: int) -> None:
        if asked == operation and not seen:
            seen.append(asked)
            before()
        fcntl.flock(fd, asked)

    return types.SimpleNamespace(
        flock=flock, LOCK_EX=fcntl.LOCK_EX, LOCK_SH=fcntl.LOCK_SH, LOCK_NB=fcntl.LOCK_NB
    )


def test_a_lock_on_a_file_removed_meanwhile_is_not_held(tmp_path, monkeypatch):
    """The race of flock and unlink: B opens the lock file; its holder A removes it and ends;
    C creates a new one and locks it; B's flock then succeeds on the removed file. B must see
    that the path names another file, lock that one, and so be refused while C holds it."""
    path = tmp_path / ".lock"
    first = take_lock(path)
    third = []

    def a_ends_and_c_begins():
        first.release()
        third.append(take_lock(path))

    fake = _fcntl_interleaved(fcntl.LOCK_EX | fcntl.LOCK_NB, a_ends_and_c_begins)
    monkeypatch.setattr(files_module, "fcntl", fake)
    monkeypatch.setattr(files_module.time, "sleep", lambda _seconds: None)
    second = take_lock(path)  # B
    assert third[0] is not None and second is None  # C holds it; B does not proceed
    third[0].release()
    second = take_lock(path)
    assert second is not None
    second.release()


def test_a_shared_lock_is_not_refused_while_its_last_holder_removes_the_file(tmp_path, monkeypatch):
    """A slice that starts while the last running slice converts its shared lock to remove
    the file waits for that moment to pass (and locks the new file), rather than being told
    that another run is using the folder."""
    path = tmp_path / ".lock"
    removing = take_lock(path, exclusive=True)  # the last slice, in the midst of release()
    sleeps = []

    def sleep(seconds: float) -> None:
        if not sleeps:
            removing.release()
        sleeps.append(seconds)

    monkeypatch.setattr(files_module.time, "sleep", sleep)
    held = take_lock(path, exclusive=False)
    assert held is not None and len(sleeps) == 1
    assert path.exists()  # the new file, which the lock is on
    held.release()
    assert not path.exists()


def test_the_jobs_records_lock_file_is_removed(synthetic_job):
    job = load_spec(synthetic_job)
    with _locked_records(job) as records:
        assert lock_files(job.output_dir) == [".jobs.json.lock"]
        records.append({"job_id": "1", "role": "run", "submission": 1})
    assert lock_files(job.output_dir) == []
    assert (job.output_dir / "jobs.json").exists()


# --------------------------------------------------------------------------- the ways a run ends


def _threads_job(tmp_path: Path, cells: int = 2, **changes) -> Path:
    """A small run on worker threads of this process."""
    synthetic(cells=cells, steps=120).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__cv={"kind": "kfold", "splits": 2},
        cluster__processes=False,
        cluster__workers=2,
        cluster__dashboard=False,
    )
    for dotted, value in changes.items():
        node = spec
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return write_spec(tmp_path, spec)


def test_a_finished_run_and_a_merge_leave_no_lock_file(tmp_path):
    summary = hpctune.run(_threads_job(tmp_path))
    assert summary.exit_code == 0 and "in this process" in summary.cluster
    assert lock_files(Path(summary.output)) == []
    hpctune.merge(tmp_path / "job.yaml")
    assert lock_files(Path(summary.output)) == []


def test_a_run_with_failed_partitions_leaves_no_lock_file(tmp_path):
    path = _threads_job(
        tmp_path,
        search__estimator=["sklearn.neighbors.KNeighborsRegressor"],
        search__params={"n_neighbors": [500]},  # more neighbours than rows: every fit fails
    )
    summary = hpctune.run(path)
    assert summary.exit_code == 3 and summary.failed == 2
    assert lock_files(Path(summary.output)) == []


def test_a_run_refused_after_locking_leaves_no_lock_file(tmp_path, capsys):
    """The changed spec is found once the folder is locked (its manifest is read then)."""
    path = _threads_job(tmp_path)
    hpctune.run(path)
    result = hpctune_command(capsys, "run", path, "--set", "search.params.ridge__alpha=[5.0]")
    assert result.code == 2 and "holds results of a different spec" in result.err
    assert lock_files(tmp_path / "out" / "synthetic") == []


def test_a_run_stopped_by_a_signal_leaves_no_lock_file(tmp_path):
    """SIGINT from inside a fit, on worker threads of this process: the run stops."""
    path = _threads_job(
        tmp_path,
        cells=4,
        search__estimator=["tests_support.InterruptOnFit", "sklearn.linear_model.Ridge"],
        search__params={"interruptonfit__marker": [str(tmp_path / "interrupted")]},
    )
    summary = hpctune.run(path)
    assert summary.stopped_by == "SIGINT" and summary.exit_code == 130
    assert lock_files(Path(summary.output)) == []


def test_a_run_ended_by_an_exception_leaves_no_lock_file(tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("results.nc cannot be written")

    monkeypatch.setattr(Store, "write_results", broken)
    with pytest.raises(RuntimeError, match=r"results\.nc"):
        hpctune.run(_threads_job(tmp_path))
    assert (tmp_path / "out" / "synthetic" / "parts").is_dir()  # it had begun
    assert lock_files(tmp_path / "out" / "synthetic") == []
