"""hpctune's stdout is its own: what estimators print, from C (file descriptor 1) or Python
(``sys.stdout``), goes to stderr in every layout, and ``--json`` prints one JSON document."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune
from tests_support import PRINTED

from hpctune import streams

TESTS = str(Path(__file__).parent)
LIBSVM = "optimization finished"
"""What libsvm prints from C (``printf`` to descriptor 1) at each fit with ``verbose=True``."""


def _environment(**changes: str) -> dict[str, str]:
    """This environment, with tests_support importable by a run in another process."""
    env = {k: v for k, v in os.environ.items() if k != "HPCTUNE_FORKSERVER"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")]))
    return {**env, **changes}


def test_svr_verbose_prints_to_descriptor_1_by_itself():
    """The estimator of the tests below really writes to descriptor 1, from C."""
    code = (
        "import numpy as np; from sklearn.svm import SVR;"
        "SVR(verbose=True).fit(np.arange(40.0).reshape(20, 2), np.arange(20.0))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert LIBSVM in done.stdout and LIBSVM not in done.stderr


def _chatty_job(tmp_path: Path) -> Path:
    """Two cells, one candidate: a scaler that prints from Python, an SVR that prints from C."""
    synthetic(cells=2, steps=120).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__estimator=["tests_support.PrintsOnFit", "sklearn.svm.SVR"],
        search__params={"svr__C": [1.0], "svr__verbose": [True]},
        search__cv={"kind": "kfold", "splits": 2},
        cluster__workers=2,
        cluster__dashboard=False,
    )
    return write_spec(tmp_path, spec)


LAYOUTS = {
    "threads": (["cluster.processes=false"], {}, "worker threads in this process"),
    "forked": (["cluster.processes=true"], {}, "worker processes"),
    "spawned": (["cluster.processes=true"], {"HPCTUNE_FORKSERVER": "0"}, "worker processes"),
}


@pytest.mark.parametrize(
    "layout",
    [
        "threads",
        pytest.param("forked", marks=pytest.mark.full),
        pytest.param("spawned", marks=pytest.mark.full),
    ],
)
def test_run_json_stdout_is_one_document_while_estimators_print(tmp_path, layout):
    overrides, env, described = LAYOUTS[layout]
    command = [sys.executable, "-m", "hpctune", "run", str(_chatty_job(tmp_path)), "--json"]
    for override in overrides:
        command += ["--set", override]
    done = subprocess.run(
        command, capture_output=True, text=True, env=_environment(**env), timeout=600
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # one document, nothing around it
    assert summary["ok"] == 2 and described in summary["cluster"]
    assert LIBSVM in done.stderr  # from C, in the workers (threads or processes)
    assert PRINTED in done.stderr  # from Python, in the workers
    assert not list((tmp_path / "out" / "synthetic").glob(".lock*"))


def test_help_and_version_still_go_to_stdout():
    for args in (["run", "--help"], ["--version"]):
        done = subprocess.run(
            [sys.executable, "-m", "hpctune", *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() and not done.stderr


def test_a_callers_process_keeps_its_descriptors_and_stdout(synthetic_job, capsys):
    """The API, or ``main`` called with arguments, changes neither descriptor 1 nor
    ``sys.stdout``: only the console script claims its process's stdout."""
    before = os.fstat(1)
    stdout = sys.stdout
    result = hpctune(capsys, "validate", synthetic_job, "--json")
    assert result.code == 0 and json.loads(result.out)["valid"] is True
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    assert sys.stdout is stdout
    assert streams.stdout() is sys.stdout


WRITES = """
import ctypes, os, subprocess, sys
from hpctune import streams
print("before")
{calls}
streams.stdout().write("own\\n")
print("python")
os.write(1, b"descriptor\\n")
subprocess.run([sys.executable, "-c", "import os; os.write(1, b'child\\\\n')"], check=True)
ctypes.CDLL(None).printf(b"c stdio\\n")  # buffered by C: a pipe is not a terminal
streams.flush()
os._exit(0)  # flushes nothing itself
"""


@pytest.mark.parametrize(
    ("calls", "stdout", "stderr"),
    [
        # the command line: hpctune's own output only
        ("streams.claim_stdout(); streams.python_stdout_to_stderr()", "before\nown\n", ""),
        # a worker process: nothing of its own
        ("streams.estimators_to_stderr()", "before\n", "own\n"),
    ],
)
def test_what_is_written_to_descriptor_1_goes_to_stderr(calls, stdout, stderr):
    """Once claimed, what Python, C and child processes write to stdout lands on stderr, and
    hpctune's own output (:func:`streams.stdout`) on stdout, in a process that ends with
    ``os._exit`` after :func:`streams.flush`."""
    code = WRITES.format(calls=calls)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == stdout
    assert done.stderr == stderr + "python\ndescriptor\nchild\nc stdio\n"


def test_an_allocated_nodes_worker_sends_what_tasks_print_to_stderr(tmp_path):
    """``python -m hpctune.worker`` (started by srun, pbsdsh, dask-jobqueue's jobs): what a
    task prints, from Python or to descriptor 1, reaches the worker's stderr, not its
    stdout."""
    from distributed import Client, LocalCluster

    def chatty():
        import os

        print("python in a task", flush=True)
        os.write(1, b"descriptor 1 in a task\n")
        return os.getpid()

    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with (
        LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
        out.open("wb") as out_file,
        err.open("wb") as err_file,
    ):
        command = [sys.executable, "-m", "hpctune.worker", cluster.scheduler_address]
        command += ["--nthreads", "1", "--local-directory", str(tmp_path)]
        node = subprocess.Popen(
            command, stdout=out_file, stderr=err_file, env=_environment(), start_new_session=True
        )
        try:
            client.wait_for_workers(1, timeout=60)
            assert client.submit(chatty, pure=False).result(timeout=60) != node.pid
        finally:
            os.killpg(node.pid, signal.SIGTERM)
            node.wait(timeout=60)
    assert out.read_text() == ""
    text = err.read_text()
    assert "python in a task" in text and "descriptor 1 in a task" in text


def test_the_commands_write_their_stdout_through_hpctunes_own_stream():
    """Once a command runs, Python's ``sys.stdout`` is stderr (what estimators print): a line
    of the command's own for stdout goes through ``cli.echo``, never a bare ``click.echo``."""
    import ast

    import hpctune.cli

    bare = [
        f"{path.name}:{node.lineno}"
        for path in sorted(Path(hpctune.cli.__file__).parent.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) in ("click.echo", "click.secho", "print")
        and not any(k.arg in ("err", "file") for k in node.keywords)
    ]
    assert bare == []
