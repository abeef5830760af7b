"""How the command line's process ends: at a stop signal anywhere in a command, exit 128+N and
one line; with threads left, the atexit handlers and then ``os._exit``, no join and no library
finaliser. Then stops at random moments, in each local layout: exit 128+N, no crash, nothing on
stderr but hpctune's own lines, no process left, and the next run resumes to the results of a
run never stopped (``tests/stress_stops.py``, which runs more tries; the SLURM allocation
layout is in ``tests/integration/test_stops_slurm.py``)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
from helpers_cli import hpctune
from stress_stops import stress, summary

from hpctune import startup

SEED = int(os.environ.get("HPCTUNE_STOPS_SEED", "18"))
"""The moments, targets and order of the tries; ``HPCTUNE_STOPS_SEED`` draws others."""

TRIES = 2
"""Per layout and signal, a SIGINT and a SIGTERM each."""


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGINT, 130, "hpctune: interrupted"),
        (signal.SIGTERM, 143, "hpctune: stopped by SIGTERM"),
        (signal.SIGUSR1, 138, "hpctune: stopped by SIGUSR1"),
    ],
)
def test_a_stop_signal_outside_a_runs_own_handling_ends_the_command_with_128_plus_n(
    monkeypatch, capsys, synthetic_job, signum, code, line
):
    """Raised while the data are checked (the command line's handlers raise Interrupted until
    the run installs its own): one line and 128+N, never Click's 'aborted' and exit 1."""

    def interrupted(*_args, **_kwargs):
        raise startup.Interrupted(signum)

    monkeypatch.setattr("hpctune.execution.driver.check_data", interrupted)
    outcome = hpctune(capsys, "run", synthetic_job)
    assert outcome.code == code
    assert [x for x in outcome.err.splitlines() if x.strip()] == [line]
    assert outcome.out == ""


def test_a_stop_that_code_turns_into_another_exception_still_ends_the_command_with_128_plus_n(
    monkeypatch, capsys, synthetic_job
):
    """A stop signal raising inside an extension module's import comes out as ``ImportError:
    initialization failed`` (seen once in a hundred stops early in a run): still 143 and the
    stop's line, never 'internal error' and exit 1."""

    def converted(*_args, **_kwargs):
        try:
            startup._interrupt(signal.SIGTERM, None)
        except startup.Interrupted:
            raise ImportError("initialization failed") from None

    monkeypatch.setattr(startup, "_stop_signal", None)
    monkeypatch.setattr(startup, "_raised_at", None)
    monkeypatch.setattr("hpctune.execution.driver.check_data", converted)
    outcome = hpctune(capsys, "run", synthetic_job)
    assert outcome.code == 143
    assert [x for x in outcome.err.splitlines() if x.strip()] == ["hpctune: stopped by SIGTERM"]


def test_a_stop_signal_repeated_at_once_is_raised_once_and_a_later_one_again(monkeypatch):
    """``scancel`` signals hpctune and the job script, which passes the signal on: the second
    SIGTERM within milliseconds is the same stop and raises nothing; one after
    ``REPEAT_SECONDS`` (a second Ctrl-C) raises again."""
    clock = [1000.0]
    monkeypatch.setattr(startup.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(startup, "_stop_signal", None)
    monkeypatch.setattr(startup, "_raised_at", None)
    with pytest.raises(startup.Interrupted):
        startup._interrupt(signal.SIGTERM, None)
    clock[0] += 0.001
    startup._interrupt(signal.SIGTERM, None)  # the duplicate
    clock[0] += startup.REPEAT_SECONDS
    with pytest.raises(startup.Interrupted) as again:
        startup._interrupt(signal.SIGINT, None)
    assert again.value.signum == signal.SIGINT
    assert startup.stop_signal() == signal.SIGTERM  # the first decides the exit code


TWICE = """
import os, signal, sys
import click
import hpctune.execution.driver as driver
from hpctune.cli import app

where = sys.argv.pop(1)
check_data = driver.check_data


def term():
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before os.kill returns


def checked(*args, **kwargs):
    if where == "cleanup":
        try:
            term()  # the stop
        finally:
            term()  # its duplicate, while a block cleans up after the first
            print("cleanup finished", file=sys.stderr, flush=True)
    elif where == "report":
        echo = click.echo

        def echo_after_the_duplicate(*args, **kwargs):
            click.echo = echo
            term()  # the duplicate, as the stop's line is written
            echo(*args, **kwargs)

        click.echo = echo_after_the_duplicate
        term()
    elif where == "swallowed":
        try:
            term()
        except KeyboardInterrupt:
            pass  # as Python does with one raised in a weakref callback during an import
        term()  # the duplicate raises nothing either
    return check_data(*args, **kwargs)


driver.check_data = checked
sys.argv = ["hpctune", "run", sys.argv[1]]
app.main()
"""


@pytest.mark.parametrize("where", ["cleanup", "report", "swallowed"])
def test_a_stop_signal_delivered_twice_ends_the_command_once_with_128_plus_n(synthetic_job, where):
    """The duplicate of a stop (a batch system signals hpctune and the job script, which passes
    it on) arriving while a block cleans up after the first, or as the stop's line is written
    (seen in CI: that line cut off by a traceback, exit 1), or after the first was swallowed:
    the cleanup finishes, one line, exit 143; the swallowed stop still stops the run before any
    partition."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(TWICE), where, str(synthetic_job)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=synthetic_job.parent,
    )
    assert done.returncode == 143, done.stderr
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert "Traceback" not in done.stderr
    if where == "cleanup":
        assert lines == ["cleanup finished", "hpctune: stopped by SIGTERM"]
    elif where == "report":
        assert lines == ["hpctune: stopped by SIGTERM"]
    else:
        assert re.search(r"stopped +by SIGTERM", done.stderr), done.stderr
        assert "0/6 partitions (0%): ok 0" in done.stderr


UNRAISABLE = """
import os, signal
from hpctune import startup

startup.command_line_process()


class Dying:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)  # raises where Python cannot raise


Dying()
print(startup.stop_signal())
"""


def test_a_stop_raised_where_python_cannot_raise_is_recorded_without_a_traceback():
    """A SIGTERM early in a job, during an import, raised in the import system's weakref
    callback: Python printed "Exception ignored in: <function _get_module_lock.<locals>.cb>"
    and a traceback into the job's log. The stop is recorded (the run then begins stopped,
    above) and nothing is printed; here in an object's ``__del__``, the same path."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(UNRAISABLE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == f"{int(signal.SIGTERM)}\n"


def test_a_plain_keyboard_interrupt_in_a_command_exits_130(monkeypatch, capsys, synthetic_job):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hpctune.execution.driver.check_data", interrupted)
    outcome = hpctune(capsys, "run", synthetic_job)
    assert outcome.code == 130
    assert "hpctune: interrupted" in outcome.err
    assert "aborted" not in outcome.err


@pytest.mark.parametrize("stopped", [True, False])
def test_a_cluster_that_fails_to_start_after_a_stop_signal_is_the_stop(
    monkeypatch, capsys, synthetic_job, stopped
):
    """A stop signal to the whole process group reaches worker processes that are still
    starting, and the cluster's start fails ("Nanny failed to start"): the run ends as stopped,
    128+N, not with an internal error. Without the signal the same failure stays a failure."""

    def failing_start(_self):
        if stopped:
            os.kill(os.getpid(), signal.SIGTERM)  # the run's own handler records it
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr("hpctune.execution.driver.ClusterStart.handle", failing_start)
    outcome = hpctune(capsys, "run", synthetic_job, "--set", "cluster.processes=false")
    if stopped:
        assert outcome.code == 143, outcome.err
        assert "internal error" not in outcome.err
        assert "stopped by SIGTERM" in outcome.out + outcome.err
    else:
        assert outcome.code == 1
        assert "internal error: RuntimeError: Nanny failed to start." in outcome.err


END = """
import atexit, sys, threading, time
from hpctune import startup
atexit.register(lambda: print("atexit ran", flush=True))
sys.stdout.write("unflushed")  # no newline: still in the buffer
if sys.argv[1] == "thread":  # a thread that outlives the command, as a fit at a stop does
    threading.Thread(target=time.sleep, args=(600,), daemon=False).start()
startup.end(143)
"""


@pytest.mark.parametrize("other_thread", [True, False])
def test_the_process_ends_with_its_code_after_the_atexit_handlers(other_thread):
    """With a thread left the process does not wait for it (a non-daemon thread in a 600 s
    sleep would hold the interpreter's exit) and still runs the atexit handlers and flushes
    stdout; alone, it exits as usual."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(END), "thread" if other_thread else "alone"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 143, done.stderr
    assert done.stdout == "unflushedatexit ran\n"
    assert done.stderr == ""


NESTED = """
import signal, sys, threading
from hpctune.cluster.waiting import watch_stop_signals
from hpctune.execution.driver import _stop_on_signals
from hpctune.startup import StopEvent


class SignalWhileHeld:
    \"\"\"The lock of an event's condition: each of the first acquisitions raises a signal in
    this thread while it holds the lock, as a second signal arriving inside Event.set does.\"\"\"

    def __init__(self, signals):
        self.lock, self.signals = threading.Lock(), list(signals)

    def acquire(self, blocking=True, timeout=-1):
        got = self.lock.acquire(blocking, timeout)
        if got and self.signals:
            signal.raise_signal(self.signals.pop(0))
        return got

    def release(self):
        self.lock.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *_exc):
        self.release()


stop, caught = StopEvent(), []
stop._cond = threading.Condition(SignalWhileHeld([signal.SIGTERM, signal.SIGINT]))
with _stop_on_signals(stop, caught):
    with watch_stop_signals() as starting:
        starting._cond = threading.Condition(SignalWhileHeld([signal.SIGINT, signal.SIGUSR1]))
        signal.raise_signal(signal.SIGINT)
        print(starting.is_set(), stop.is_set(), caught)
"""


def test_signals_arriving_inside_the_handler_of_another_set_the_stop_once():
    """``scancel --signal=INT --full`` signals hpctune and the job script, which passes it on:
    two SIGINT within microseconds. A handler running inside the ``Event.set`` of the one before
    (whose lock its own thread holds) once left a stopped run waiting for ever on that lock,
    its job RUNNING until the walltime; each signal here arrives exactly there."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(NESTED)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True True ['SIGINT']\n"


@pytest.mark.full
@pytest.mark.parametrize("layout", ["threads", "processes", "forked"])
def test_stops_at_random_moments_exit_128_plus_n_and_resume(layout, tmp_path):
    lines: list[str] = []
    done = stress([layout], TRIES, ["INT", "TERM"], SEED, 1.0, tmp_path, report=lines.append)
    print(f"seed {SEED}: python tests/stress_stops.py --layout {layout} --seed {SEED}")
    print("\n".join(lines + summary(done)))
    assert len(done) == 2 * TRIES
    failed = [t.line() for t in done if t.problems]
    assert not failed, f"seed {SEED}:\n" + "\n".join(failed)
    # each try was a stop (a moment after the run's end would prove nothing) or said so
    assert {t.exit for t in done} <= {130, 143, 0}
    assert all(t.resumed_equal for t in done)
