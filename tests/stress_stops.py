"""Stop ``hpctune run`` with SIGINT and SIGTERM at random moments, in every layout, and check
every stop: exit code 128+N, no crash (of hpctune or of a worker process: the kernel's log,
where readable), nothing on stderr but hpctune's own lines, no process left behind, and a next
run that resumes to the results of a run never stopped.

    python tests/stress_stops.py --tries 20 --layout threads
    python tests/stress_stops.py --tries 10 --layout slurm --signal TERM --seed 7

Layouts (``--layout``, repeatable; ``all`` is the four):

- ``threads``: the workers are threads of the ``hpctune run`` process (``cluster.processes:
  false``), each fit a task;
- ``processes``: spawned worker processes (``cluster.processes: true``,
  ``HPCTUNE_FORKSERVER=0``), a task computes whole searches (``cluster.granularity:
  partition``);
- ``forked``: worker processes forked from hpctune's forkserver, each fit a task;
- ``slurm``: ``cluster.mode: allocation`` in a batch job of two nodes on the test SLURM (``bash
  tests/slurm/up.sh``), the job script rendered by ``hpctune render``; SIGTERM is ``scancel``,
  SIGINT is ``scancel --signal=INT --full`` (the batch shell, hpctune and the worker steps).

A try of a local layout signals the run's process alone (as a job script passing a signal on)
or, every other try, its whole process group (as Ctrl-C at a terminal does). The moment is
drawn uniformly between ``--earliest`` seconds after the start (the interpreter's start-up
and the import of hpctune come before hpctune handles signals) and 0.8 times the length of a
run never stopped, measured first (a try whose run ended before the signal says so).
``--seed`` makes the moments, the targets and the signals repeatable; the seed is printed.
Each try prints one line; the end, the counts per layout and signal. Exit status 0 when every
try passed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "integration")]

from helpers import synthetic, synthetic_spec, write_spec  # noqa: E402

LOCAL_LAYOUTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "threads": (["cluster.processes=false"], {}),
    "processes": (
        ["cluster.processes=true", "cluster.granularity=partition"],
        {"HPCTUNE_FORKSERVER": "0"},
    ),
    "forked": (["cluster.processes=true", "cluster.granularity=fit"], {"HPCTUNE_FORKSERVER": "1"}),
}
LAYOUTS = (*LOCAL_LAYOUTS, "slurm")
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM}
CRASH = re.compile(r"Segmentation fault|Fatal Python error|core dumped|Aborted")
COMPARED = ("status", "best_score", "n_train", "n_test")  # and every best_* and cv_* variable
RUN_TIMEOUT = 300.0
LATEST = 0.8
"""The latest moment, as a share of the run never stopped: a shared machine's runs vary."""
STOP_TIMEOUT = 120.0


@dataclass
class Try:
    layout: str
    signal: str
    target: str
    delay: float
    exit: int | None = None
    problems: list[str] = field(default_factory=list)
    finished_first: bool = False
    resumed_equal: bool | None = None
    stderr: str = ""

    def line(self) -> str:
        verdict = "ok" if not self.problems else "FAIL " + "; ".join(self.problems)
        first = " (finished before the signal)" if self.finished_first else ""
        return (
            f"{self.layout:9} SIG{self.signal:4} to {self.target:7} at {self.delay:5.2f} s: "
            f"exit {self.exit}{first}, resumed equal {self.resumed_equal}: {verdict}"
        )


def make_job(folder: Path, layout: str, cells: int = 5, steps: int = 1500) -> Path:
    """A small SVR search (a few seconds on two cores) on ``cells`` synthetic cells."""
    data = folder / "cells.nc"
    if not data.exists():
        synthetic(cells=cells, steps=steps).to_netcdf(data)
    changes: dict[str, Any] = {
        "search__estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
        "search__params": {"svr__C": [0.3, 3.0], "svr__gamma": ["scale", 0.3]},
        "cluster__dashboard": False,
        "output": str(folder / "out"),
    }
    if layout == "slurm":
        changes.update(
            cluster__mode="allocation",
            cluster__interface="lo",
            scheduler__nodes=2,
            scheduler__cores_per_node=1,
            scheduler__walltime="00:10:00",
            name=f"stops-{os.getpid()}",
        )
    return write_spec(folder, synthetic_spec(data, **changes), name=f"{layout}.yaml")


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    src = HERE.parent / "src"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(src), str(HERE), env.get("PYTHONPATH", "")) if p
    )
    env.update(extra)
    return env


def read_results(output: Path) -> dict[str, Any]:
    import numpy as np
    import xarray as xr

    with xr.open_dataset(output / "results.nc") as ds:
        names = [n for n in ds.data_vars if n in COMPARED or n.startswith(("best_", "cv_"))]
        return {name: np.asarray(ds[name].values) for name in sorted(names)}


def same_results(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import numpy as np

    if a.keys() != b.keys():
        return False
    for name in a:
        x, y = a[name], b[name]
        if x.dtype.kind == "f":
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def stderr_problems(stderr: str) -> list[str]:
    """Lines on stderr that are not hpctune's own (``hpctune: ...``; blank lines)."""
    foreign = [
        line for line in stderr.splitlines() if line.strip() and not line.startswith("hpctune: ")
    ]
    out = []
    if CRASH.search(stderr):
        out.append("crash reported on stderr")
    if foreign:
        out.append(f"{len(foreign)} foreign stderr line(s), first: {foreign[0][:160]!r}")
    return out


NOISE = re.compile(r"Traceback|KeyboardInterrupt|CommClosedError|Exception")


def log_problems(text: str, what: str) -> list[str]:
    """A crash or a traceback in a job's log, which holds what ``hpctune run`` writes to stdout
    and stderr (its progress and summary, here) and SLURM's own lines."""
    out = []
    if CRASH.search(text):
        out.append(f"crash reported in {what}")
    noise = [line for line in text.splitlines() if NOISE.search(line)]
    if noise:
        out.append(f"{len(noise)} traceback line(s) in {what}, first: {noise[0][:160]!r}")
    return out


def kernel_segfaults() -> list[str] | None:
    """The kernel's log lines of processes ended by SIGSEGV (``comm[pid]: segfault at ...``),
    None where the log cannot be read: a worker process that crashes at a stop shows nowhere
    else (its nanny's record of it is not on the terminal)."""
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return [line for line in out.stdout.splitlines() if "segfault at" in line]


# --------------------------------------------------------------------------- local layouts


class LocalLayout:
    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        overrides, extra = LOCAL_LAYOUTS[name]
        self.spec = make_job(folder, name)
        self.output = folder / "out"
        self.env = environment(extra)
        self.command = [sys.executable, "-m", "hpctune", "run", str(self.spec), "--json"]
        for override in overrides:
            self.command += ["--set", override]

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            start_new_session=True,
        )

    def reference(self) -> tuple[float, dict[str, Any]]:
        shutil.rmtree(self.output, ignore_errors=True)
        started = time.monotonic()
        done = self.start()
        out, err = done.communicate(timeout=RUN_TIMEOUT)
        seconds = time.monotonic() - started
        if done.returncode != 0 or stderr_problems(err):
            raise SystemExit(f"{self.name}: the run never stopped failed:\n{out}\n{err}")
        return seconds, read_results(self.output)

    def attempt(self, sig: str, delay: float, group: bool, reference: dict[str, Any]) -> Try:
        result = Try(self.name, sig, "group" if group else "process", delay)
        shutil.rmtree(self.output, ignore_errors=True)
        process = self.start()
        try:
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                if group:
                    os.killpg(process.pid, SIGNALS[sig])
                else:
                    process.send_signal(SIGNALS[sig])
            out, err = process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            result.problems.append(f"still running {STOP_TIMEOUT:g} s after the signal")
            out, err = "", ""
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        result.exit = process.returncode
        result.stderr = err
        check_exit(result, out)
        result.problems += stderr_problems(err)
        left = group_members(process.pid, wait=15.0)
        if left:
            result.problems.append(f"{len(left)} process(es) of the run left running: {left}")
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        again = subprocess.run(
            self.command, capture_output=True, text=True, env=self.env, timeout=RUN_TIMEOUT
        )
        if again.returncode != 0:
            result.problems.append(f"the next run exited {again.returncode}: {again.stderr[-300:]}")
        else:
            result.problems += [f"next run: {p}" for p in stderr_problems(again.stderr)]
            result.resumed_equal = same_results(read_results(self.output), reference)
            if not result.resumed_equal:
                result.problems.append("the next run's results differ from a run never stopped")
        return result


def check_exit(result: Try, stdout: str) -> None:
    expected = 128 + SIGNALS[result.signal]
    if result.exit == expected:
        return
    summary = None
    with contextlib.suppress(ValueError):
        summary = json.loads(stdout)
    if result.exit == 0 and summary is not None and summary.get("stopped_by") is None:
        result.finished_first = True  # the signal came after the run's end
        return
    if result.exit is not None and result.exit in (-signal.SIGSEGV, 128 + signal.SIGSEGV):
        result.problems.append("SIGSEGV")
    result.problems.append(f"exit {result.exit}, expected {expected}")


def group_members(pgid: int, wait: float) -> list[int]:
    """Processes still in process group ``pgid`` after up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        members = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
        if not members or time.monotonic() >= deadline:
            return members
        time.sleep(0.2)


# --------------------------------------------------------------------------- SLURM allocation


class SlurmLayout:
    """``cluster.mode: allocation`` in a two-node batch job, stopped with scancel."""

    name = "slurm"

    def __init__(self, folder: Path) -> None:
        import slurmtools

        ok, why = slurmtools.slurm_status()
        if not ok:
            raise SystemExit(f"slurm: the test SLURM is not usable ({why}): bash tests/slurm/up.sh")
        self.tools = slurmtools
        self.folder = folder
        self.spec = make_job(folder, "slurm")
        self.output = folder / "out"
        self.env = environment({})
        rendered = subprocess.run(
            [sys.executable, "-m", "hpctune", "render", str(self.spec)],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
        ).stdout
        # the only addition to the shipped script: hpctune's own exit status, in the job's log
        marker = 'exit "$status"\n'
        if not rendered.endswith(marker):
            raise SystemExit("slurm: the rendered job script does not end as expected")
        self.script = folder / "job.sh"
        self.script.write_text(
            rendered[: -len(marker)] + 'echo "stress: hpctune exit $status" >&2\n' + marker
        )

    def _submit(self) -> str:
        (self.output / "logs").mkdir(parents=True, exist_ok=True)
        job_id = self.tools.submit(self.script, cwd=self.folder, env=self.env)
        self.tools.wait_for_state(job_id, {"RUNNING"}, timeout=RUN_TIMEOUT)
        return job_id

    def _log(self, job_id: str) -> str:
        logs = list((self.output / "logs").glob(f"*-{job_id}.out"))
        return logs[0].read_text(errors="replace") if logs else ""

    def _finish(self, job_id: str) -> str:
        states = set(self.tools.wait_for_job(job_id, timeout=RUN_TIMEOUT).values())
        return states.pop() if len(states) == 1 else str(states)

    def reference(self) -> tuple[float, dict[str, Any]]:
        shutil.rmtree(self.output, ignore_errors=True)
        job_id = self._submit()
        started = time.monotonic()
        state = self._finish(job_id)
        seconds = time.monotonic() - started
        if state != "COMPLETED":
            raise SystemExit(f"slurm: the job never stopped ended {state}:\n{self._log(job_id)}")
        return seconds, read_results(self.output)

    def attempt(self, sig: str, delay: float, _group: bool, reference: dict[str, Any]) -> Try:
        result = Try(self.name, sig, "job", delay)
        shutil.rmtree(self.output, ignore_errors=True)
        job_id = self._submit()
        time.sleep(delay)
        if sig == "TERM":
            self.tools.cancel(job_id)
        else:
            self.tools.run(["scancel", "--signal=INT", "--full", job_id], check=False)
        state = self._finish(job_id)
        log = self._log(job_id)
        found = re.findall(r"stress: hpctune exit (\d+)", log)
        result.exit = int(found[-1]) if found else None
        result.stderr = log
        info = self.tools.job_info(job_id)
        exit_code = info[-1].get("ExitCode", "?") if info else "?"
        if "139" in exit_code.split(":") or exit_code.split(":")[-1] == "11":
            result.problems.append(f"job ExitCode {exit_code}")
        check_exit(result, "")
        if result.exit == 0:
            result.finished_first = True
            result.problems = [p for p in result.problems if not p.startswith("exit 0")]
        if sig == "TERM" and not result.finished_first and state != "CANCELLED":
            result.problems.append(f"job state {state}, expected CANCELLED")
        result.problems += log_problems(log, "the job's log")
        for workers in (self.output / "logs").glob(f"workers-{job_id}-*.log"):
            # the workers' own log: Dask's records of their shutdown belong there; not a crash
            text = workers.read_text(errors="replace")
            found = [f"crash reported in {workers.name}"] if CRASH.search(text) else []
            if re.search(r"killed by signal 11|exit code -11|Segmentation", text):
                found.append(f"a worker died by SIGSEGV ({workers.name})")
            if found:
                result.problems += found
                result.stderr += f"\n{workers.name}:\n{text}"
        job_id = self._submit()
        state = self._finish(job_id)
        if state != "COMPLETED":
            result.problems.append(f"the next job ended {state}")
        else:
            result.resumed_equal = same_results(read_results(self.output), reference)
            if not result.resumed_equal:
                result.problems.append("the next job's results differ from a job never stopped")
        return result


# --------------------------------------------------------------------------- driver


def stress(
    layouts: list[str],
    tries: int,
    signals: list[str],
    seed: int,
    earliest: float,
    folder: Path,
    report: Any = print,
) -> list[Try]:
    """``tries`` stops per layout and signal; every try, as it ends, goes to ``report``."""
    rng = random.Random(seed)
    done: list[Try] = []
    for name in layouts:
        place = folder / name
        place.mkdir(parents=True, exist_ok=True)
        layout = SlurmLayout(place) if name == "slurm" else LocalLayout(name, place)
        seconds, reference = layout.reference()
        report(f"{name}: a run never stopped takes {seconds:.1f} s")
        plan = [(sig, i) for i in range(tries) for sig in signals]
        rng.shuffle(plan)
        for sig, i in plan:
            delay = rng.uniform(earliest, max(earliest, LATEST * seconds))
            before = kernel_segfaults()
            outcome = layout.attempt(sig, delay, i % 2 == 1, reference)
            after = kernel_segfaults()
            if before is not None and after is not None and len(after) > len(before):
                new = after[len(before) :]
                outcome.problems.append(f"{len(new)} SIGSEGV in the kernel's log: {new[0][:120]}")
            done.append(outcome)
            report(outcome.line())
            if outcome.problems and outcome.stderr:
                report("  | " + "\n  | ".join(outcome.stderr.splitlines()[-80:]))
    return done


def summary(done: list[Try]) -> list[str]:
    lines = []
    for layout in dict.fromkeys(t.layout for t in done):
        for sig in dict.fromkeys(t.signal for t in done):
            mine = [t for t in done if t.layout == layout and t.signal == sig]
            if not mine:
                continue
            exits = Counter(t.exit for t in mine)
            crashes = sum(any("SIGSEGV" in p or "crash" in p for p in t.problems) for t in mine)
            checked = "" if kernel_segfaults() is not None else " (the kernel's log unread)"
            equal = sum(bool(t.resumed_equal) for t in mine)
            failed = sum(bool(t.problems) for t in mine)
            first = sum(t.finished_first for t in mine)
            lines.append(
                f"{layout:9} SIG{sig:4} tries {len(mine)}: exits {dict(exits)}, "
                f"finished before the signal {first}, crashes {crashes}{checked}, resumed equal "
                f"{equal}/{len(mine)}, failed {failed}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=20, help="per layout and signal")
    parser.add_argument("--layout", action="append", choices=[*LAYOUTS, "all"])
    parser.add_argument("--signal", action="append", choices=list(SIGNALS))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--earliest", type=float, default=1.0, help="seconds after the start")
    parser.add_argument("--folder", type=Path, default=None, help="kept; default a temporary one")
    args = parser.parse_args(argv)
    layouts = list(LAYOUTS) if not args.layout or "all" in args.layout else args.layout
    signals = args.signal or list(SIGNALS)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    print(f"seed {seed} (--seed {seed} repeats these tries)", flush=True)
    with contextlib.ExitStack() as stack:
        folder = args.folder or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        done = stress(
            layouts,
            args.tries,
            signals,
            seed,
            args.earliest,
            folder,
            report=lambda line: print(line, flush=True),
        )
    for line in summary(done):
        print(line)
    return 1 if any(t.problems for t in done) else 0


if __name__ == "__main__":
    sys.exit(main())
