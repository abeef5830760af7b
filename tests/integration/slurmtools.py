"""Helpers for tests that drive the local SLURM test cluster (tests/slurm/up.sh).

Only the SLURM command-line tools are used (sbatch, squeue, scontrol, scancel,
sinfo). There is no accounting daemon, so ``sacct`` does not work: the final
state of a job is read from ``scontrol -o show job`` (kept for MinJobAge=600 s
after the end) and, failing that, from the job-completion log
``/var/log/slurm/jobcomp.log``.

Formats relied upon:

* ``sbatch --parsable`` prints ``<jobid>`` or ``<jobid>;<cluster>``.
* ``squeue -h -j <id> -o %T`` prints one state per line (PENDING, RUNNING,
  COMPLETING, ...) while the job (or any task of an array) is in the queue,
  and nothing once it has finished; for an id the controller has forgotten it
  exits 1 with "Invalid job id specified" on stderr.
* ``scontrol -o show job <id>`` prints one line per job (one per array task
  once the tasks are split) of space-separated ``Key=Value`` pairs, e.g.
  ``JobId=7 ArrayJobId=6 ArrayTaskId=1 ... JobState=COMPLETED Reason=None ...
  Restarts=0 ... ExitCode=0:0 ... NodeList=node1 ...``; unknown ids exit 1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "ACTIVE_STATES",
    "JOBCOMP_LOG",
    "NODES",
    "TERMINAL_STATES",
    "SlurmError",
    "cancel",
    "final_state",
    "job_info",
    "job_states",
    "max_array_size",
    "queue_states",
    "requeue_now",
    "run",
    "slurm_status",
    "submit",
    "submit_script",
    "wait_for_job",
    "wait_for_state",
]

NODES = ("node1", "node2")
JOBCOMP_LOG = Path("/var/log/slurm/jobcomp.log")

#: States after which a job will not run again by itself.
TERMINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)
#: States of a job still owned by the queue.
ACTIVE_STATES = frozenset(
    {
        "CONFIGURING",
        "COMPLETING",
        "PENDING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "RESV_DEL_HOLD",
        "RUNNING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "SUSPENDED",
    }
)
# sinfo %t states of a node that runs jobs (plnd: idle but planned by backfill
# for a pending job; a trailing "*" would mean not responding).
_USABLE_NODE_STATES = frozenset({"idle", "mix", "mix-", "alloc", "alloc+", "comp", "plnd"})
_KV_SPLIT = re.compile(r"\s+(?=[A-Za-z][\w:/]*=)")


class SlurmError(RuntimeError):
    """A SLURM command failed or a job did not behave as expected."""


def run(
    cmd: Sequence[str],
    *,
    timeout: float = 30.0,
    check: bool = True,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its text output; raise SlurmError on failure if check."""
    try:
        proc = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise SlurmError(f"{' '.join(cmd)!s} did not finish within {timeout}s") from exc
    except FileNotFoundError as exc:
        raise SlurmError(f"{cmd[0]} not found on PATH") from exc
    if check and proc.returncode != 0:
        raise SlurmError(
            f"{' '.join(cmd)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}"
        )
    return proc


# --------------------------------------------------------------- availability
def slurm_status(timeout: float = 5.0) -> tuple[bool, str]:
    """Return (True, "") if the test cluster answers, else (False, reason).

    Checks that sbatch is on PATH, that ``scontrol ping`` reports the
    controller UP and that both emulated nodes are usable (idle/mix/alloc).
    """
    hint = "start it with: bash tests/slurm/up.sh"
    for tool in ("sbatch", "squeue", "scontrol", "sinfo"):
        if shutil.which(tool) is None:
            return False, f"SLURM not available: {tool} not on PATH ({hint})"
    try:
        ping = run(["scontrol", "ping"], timeout=timeout, check=False)
    except SlurmError as exc:
        return False, f"SLURM controller does not answer: {exc} ({hint})"
    if "is UP" not in ping.stdout:
        msg = (ping.stdout + ping.stderr).strip().splitlines()
        msg = msg[0] if msg else f"exit {ping.returncode}"
        return False, f"SLURM controller does not answer scontrol ping: {msg} ({hint})"
    try:
        nodes = run(["sinfo", "-h", "-N", "-o", "%N %t"], timeout=timeout, check=False)
    except SlurmError as exc:
        return False, f"sinfo does not answer: {exc} ({hint})"
    states = dict(line.split(None, 1) for line in nodes.stdout.splitlines() if " " in line)
    bad = {n: states.get(n, "missing") for n in NODES if states.get(n) not in _USABLE_NODE_STATES}
    if bad:
        return False, f"SLURM test nodes not usable: {bad} ({hint})"
    return True, ""


def max_array_size() -> int:
    """MaxArraySize of the running controller (array indices go up to this - 1)."""
    out = run(["scontrol", "show", "config"]).stdout
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.M)
    if not match:
        raise SlurmError("MaxArraySize not found in scontrol show config")
    return int(match.group(1))


# ------------------------------------------------------------------ submitting
def submit(
    script: str | os.PathLike[str],
    *sbatch_args: str,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> str:
    """``sbatch --parsable [sbatch_args] script``; return the job id (e.g. "42").

    For an array job this is the array's job id; its tasks are "42_0", ...
    ``cwd`` defaults to the script's directory so relative output paths and
    the default slurm-%j.out land next to it.
    """
    script = Path(script)
    if cwd is None:
        cwd = script.parent
    proc = run(
        ["sbatch", "--parsable", *sbatch_args, str(script)], cwd=cwd, env=env, timeout=timeout
    )
    job_id = proc.stdout.strip().split(";", 1)[0]
    if not re.fullmatch(r"\d+", job_id):
        raise SlurmError(f"unexpected sbatch --parsable output: {proc.stdout!r}")
    return job_id


def submit_script(
    directory: str | os.PathLike[str],
    body: str,
    *sbatch_args: str,
    name: str = "job.sh",
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> str:
    """Write ``body`` (a "#!/bin/bash" line is added if missing) to
    ``directory/name`` and submit it from ``directory``; return the job id."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not body.startswith("#!"):
        body = "#!/bin/bash\n" + body
    path = directory / name
    path.write_text(body)
    path.chmod(0o755)
    return submit(path, *sbatch_args, cwd=directory, env=env, timeout=timeout)


def cancel(*job_ids: str, signal: str | None = None, batch: bool = False) -> None:
    """scancel the given jobs (errors ignored: the jobs may already be gone).

    With ``signal`` the jobs are only signalled, not cancelled; with
    ``batch=True`` as well, only the batch shell gets the signal (what
    ``sbatch --signal=B:SIG@N`` does near the time limit).
    """
    if not job_ids:
        return
    cmd = ["scancel"]
    if signal:
        cmd.append(f"--signal={signal}")
    if batch:
        cmd.append("--batch")
    run([*cmd, *job_ids], check=False)


# -------------------------------------------------------------------- querying
def queue_states(job_id: str) -> list[str] | None:
    """States listed by ``squeue -h -j ID -o %T`` (one per queued job/array task).

    [] when the job has left the queue (finished), None when the controller
    does not know the id at all (never existed or purged after MinJobAge).
    """
    proc = run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], check=False)
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return None
        raise SlurmError(f"squeue -j {job_id} failed: {proc.stderr.strip()}")
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def _parse_kv(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _KV_SPLIT.split(line.strip()):
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
    return out


def job_info(job_id: str) -> list[dict[str, str]]:
    """``scontrol -o show job ID`` as one dict per record ([] if unknown).

    A plain job gives one record. An array job id gives one record per task
    (keys ArrayJobId, ArrayTaskId); tasks not yet started may still be grouped
    in one record whose ArrayTaskId is a range such as "3-9" or "3-9%2".
    """
    proc = run(["scontrol", "-o", "show", "job", str(job_id)], check=False)
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return []
        raise SlurmError(f"scontrol show job {job_id} failed: {proc.stderr.strip()}")
    return [_parse_kv(line) for line in proc.stdout.splitlines() if line.strip()]


def _record_key(rec: Mapping[str, str]) -> str:
    if rec.get("ArrayTaskId"):
        return f"{rec.get('ArrayJobId', rec['JobId'])}_{rec['ArrayTaskId']}"
    return rec["JobId"]


def _jobcomp_state(job_id: str) -> str | None:
    """Last JobState recorded for job_id in the job-completion log, if readable."""
    try:
        lines = JOBCOMP_LOG.read_text(errors="replace").splitlines()
    except OSError:
        return None
    state = None
    for line in lines:
        if line.startswith(f"JobId={job_id} "):
            state = _parse_kv(line).get("JobState", state)
    return state


def job_states(job_id: str) -> dict[str, str]:
    """Map "ID" (plain job) or "ARRAYID_TASK" (array task) to its JobState.

    Reads ``scontrol -o show job``; for a plain job that the controller no
    longer knows, falls back to the job-completion log. {} if nothing is known.
    """
    recs = job_info(job_id)
    if recs:
        return {_record_key(r): r.get("JobState", "UNKNOWN") for r in recs}
    state = _jobcomp_state(str(job_id))
    return {str(job_id): state} if state else {}


def final_state(job_id: str) -> str:
    """The single JobState of a plain job (or of one array task "ID_N")."""
    states = job_states(job_id)
    if not states:
        raise SlurmError(f"job {job_id} is unknown to scontrol and to {JOBCOMP_LOG}")
    values = set(states.values())
    if len(values) != 1:
        raise SlurmError(f"job {job_id} has several states {states}; use job_states()")
    return values.pop()


def _describe(job_id: str) -> str:
    try:
        proc = run(["scontrol", "show", "job", str(job_id)], check=False, timeout=10)
        return (proc.stdout or proc.stderr).strip()
    except SlurmError as exc:
        return str(exc)


def wait_for_job(
    job_id: str,
    timeout: float = 60.0,
    poll: float = 0.25,
    cancel_on_timeout: bool = True,
) -> dict[str, str]:
    """Wait until the job (all tasks of an array) has left the queue.

    Polls ``squeue -h -j ID -o %T`` until it lists nothing, then checks with
    ``scontrol show job`` that every record is in a terminal state (COMPLETING
    and requeued jobs keep the wait going). Returns job_states(job_id).
    On timeout the job is cancelled (unless cancel_on_timeout=False) and
    TimeoutError is raised with the job's description.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            queued = queue_states(job_id)
            if not queued:
                states = job_states(job_id)
                last = states
                if all(s in TERMINAL_STATES for s in states.values()):
                    return states
            else:
                last = queued
        except SlurmError as exc:  # controller busy or restarting: keep polling
            last = exc
        if time.monotonic() >= deadline:
            desc = _describe(job_id)
            if cancel_on_timeout:
                cancel(str(job_id))
            raise TimeoutError(
                f"job {job_id} still not finished after {timeout}s (last seen: {last})\n{desc}"
            )
        time.sleep(poll)


def wait_for_state(
    job_id: str, states: Iterable[str], timeout: float = 30.0, poll: float = 0.2
) -> str:
    """Wait until a plain job's JobState is one of ``states``; return it."""
    wanted = set(states)
    deadline = time.monotonic() + timeout
    current = None
    while True:
        recs = job_info(job_id)
        current = recs[0].get("JobState") if len(recs) == 1 else None
        if current in wanted:
            return current
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"job {job_id} not in {sorted(wanted)} after {timeout}s (state {current})\n"
                + _describe(job_id)
            )
        time.sleep(poll)


def requeue_now(job_id: str, timeout: float = 30.0) -> str | None:
    """``scontrol requeue ID`` and let the job start again at once; return the start time
    SLURM had put off the job to (``2026-12-04T16:40:24``), or None if it was not put off.

    SLURM gives a requeued job a BeginTime about two minutes ahead. Setting
    StartTime=now clears it, but only once the job is back to PENDING: while it
    is still COMPLETING the requeue logic overwrites the new value. So this
    waits for PENDING, then updates StartTime and checks the Reason is no
    longer BeginTime (retrying until ``timeout``).

    It also waits until the wall-clock second after the requeue: slurmd compares the new
    launch's credential with the old run's revocation to the second, and a restart within the
    same second is killed ("Job credential revoked", the job ends FAILED).
    """
    run(["scontrol", "requeue", str(job_id)])
    requeued = time.time()
    deadline = time.monotonic() + timeout
    put_off = None
    while True:
        recs = job_info(job_id)
        rec = recs[0] if len(recs) == 1 else {}
        state, reason = rec.get("JobState"), rec.get("Reason")
        if state == "PENDING" and reason == "BeginTime":
            put_off = put_off or rec.get("StartTime")
            time.sleep(max(0.0, int(requeued) + 1.1 - time.time()))
            run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=False)
        elif state in {"RUNNING", "CONFIGURING"} or (state == "PENDING" and reason != "BeginTime"):
            return put_off
        elif state in TERMINAL_STATES and rec.get("Restarts", "0") != "0":
            return put_off  # it started again, and a short run has already ended
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"requeued job {job_id} did not become eligible within {timeout}s "
                f"(state {state}, reason {reason})\n{_describe(job_id)}"
            )
        time.sleep(0.2)
