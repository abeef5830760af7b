"""SLURM: everything hpctune knows about it.

- Job scripts: ``#SBATCH`` directives (``slurm.sh.j2``), a job that requeues itself after the
  walltime warning (``--signal=B:USR1@grace``, at most :data:`MAX_REQUEUES` times).
- ``sbatch --parsable``, states from sacct (where accounting answers) or squeue and scontrol,
  ``scancel``, and ``MaxArraySize`` from ``scontrol show config``.
- Inside a job (``sbatch``, ``salloc``): ``SLURM_JOB_ID``, ``SLURM_JOB_NODELIST`` (e.g.
  ``node[1-2]``), ``SLURM_JOB_CPUS_PER_NODE`` (e.g. ``32(x2),16``), ``SLURM_NTASKS``,
  ``SLURM_MEM_PER_NODE`` or ``SLURM_MEM_PER_CPU`` (MB), and inside ``srun`` ``SLURM_STEP_ID`` /
  ``SLURM_STEP_NUM_TASKS``. Workers start as one ``srun`` step, one worker process per task.
- dask-jobqueue's ``SLURMCluster``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import AllocationError, ClusterError
from ..units import duration, whole_size
from .base import Allocation, JobqueueFlavour, Scheduler
from .commands import bad_output, run_command
from .jobs import Dependency, JobState, summarise
from .launch import LaunchCommand, Launcher, Layout, WorkerSpec
from .slurm_hostlist import expand_counts, expand_hostlist

MAX_REQUEUES = 10
"""How often a SLURM job requeues itself after the walltime warning before it gives up."""

#: Directives that hpctune writes itself from a spec key (or a submit option).
RESERVED_DIRECTIVES: dict[str, str] = {
    **dict.fromkeys(("-J", "--job-name"), "name"),
    **dict.fromkeys(("-N", "--nodes"), "scheduler.nodes"),
    **dict.fromkeys(("-c", "--cpus-per-task", "--ntasks-per-node"), "scheduler.cores_per_node"),
    **dict.fromkeys(("--mem",), "scheduler.memory"),
    **dict.fromkeys(("-t", "--time"), "scheduler.walltime"),
    **dict.fromkeys(("-p", "--partition"), "scheduler.queue"),
    **dict.fromkeys(("-A", "--account"), "scheduler.account"),
    **dict.fromkeys(("-o", "--output", "-e", "--error"), "scheduler.log_dir"),
    **dict.fromkeys(("--signal",), "scheduler.grace"),
    **dict.fromkeys(("-a", "--array"), "submit --array"),
    **dict.fromkeys(("-d", "--dependency"), "submit --after"),
}

#: Variables SLURM reads as srun options: the driver's job or step sets them, the worker step
#: must not inherit them (``--ntasks-per-node=1`` of the batch job would contradict ours).
SRUN_INPUT_VARIABLES = (
    "SLURM_NTASKS",
    "SLURM_NPROCS",
    "SLURM_NTASKS_PER_NODE",
    "SLURM_CPUS_PER_TASK",
    "SLURM_DISTRIBUTION",
    "SLURM_NNODES",
    "SRUN_CPUS_PER_TASK",
)

PENDING = {
    "PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED",
}  # fmt: skip
RUNNING = {
    "RUNNING", "CONFIGURING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
}  # fmt: skip
DONE = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
}  # fmt: skip
PHASE = {
    **dict.fromkeys(PENDING, "pending"),
    **dict.fromkeys(RUNNING, "running"),
    **dict.fromkeys(DONE, "done"),
}
PARSABLE = re.compile(r"^(\d+)(?:;([A-Za-z0-9._-]+))?$")
KEY_VALUE_SPLIT = re.compile(r"\s+(?=[A-Za-z][\w:/]*=)")
MAX_ARRAY = re.compile(r"^MaxArraySize\s*=\s*(\d+)", re.MULTILINE)


def _clusters(cluster: str | None) -> list[str]:
    return [f"--clusters={cluster}"] if cluster else []


def parse_key_values(line: str) -> dict[str, str]:
    """One line of ``scontrol -o show job``: space-separated ``Key=Value`` pairs."""
    found: dict[str, str] = {}
    for item in KEY_VALUE_SPLIT.split(line.strip()):
        key, sep, value = item.partition("=")
        if sep:
            found[key] = value
    return found


def _exit_code(text: str | None) -> int | None:
    """``ExitCode=2:0`` -> 2 (the signal part is dropped)."""
    if not text:
        return None
    head = text.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def _summary(job_id: str, tasks: dict[str, str], source: str, **details: Any) -> JobState:
    return summarise(job_id, tasks, PHASE, source, ok_states=["COMPLETED"], **details)


def _reason(text: str | None) -> str | None:
    return None if text in (None, "", "None", "(null)") else text


def _base_id(job_id: str) -> str:
    return job_id.split("_", 1)[0].split(".", 1)[0]


def slurm_time(seconds: int) -> str:
    """``D-HH:MM:SS`` (or ``HH:MM:SS`` below a day), as ``--time`` reads it."""
    return duration(seconds)


def slurm_memory(size: int) -> str:
    """``--mem`` value: whole T, G or M (mebibytes, rounded up)."""
    number, unit = whole_size(int(size), [("T", 2**40), ("G", 2**30), ("M", 2**20)])
    return f"{number}{unit}"


class SrunLauncher(Launcher):
    """One ``srun`` job step over the allocation, one worker process per task."""

    name = "srun"

    def __init__(self, *, inside_step: bool = False, executable: str = "srun"):
        self.inside_step = inside_step
        self.executable = executable

    def commands(
        self, layout: Layout, worker: WorkerSpec, env: Mapping[str, str]
    ) -> list[LaunchCommand]:
        """One ``srun`` of every worker, without the batch job's srun input variables."""
        memory = [m for m in layout.memory_limit if m is not None]
        argv = [
            self.executable,
            "--job-name=hpctune-workers",
            "--kill-on-bad-exit=0",
            f"--nodes={len(layout.hosts)}",
            f"--ntasks={layout.total_workers}",
            f"--cpus-per-task={layout.threads}",
            "--export=ALL",
        ]
        if layout.uniform:
            argv.append(f"--ntasks-per-node={layout.workers[0]}")
        if self.inside_step:
            argv.append("--overlap")
        command = worker.command(layout.threads, min(memory) if memory else None)
        return [LaunchCommand(argv + command, dict(env), unset=SRUN_INPUT_VARIABLES)]


def detect_slurm(env: Mapping[str, str]) -> Allocation | None:
    """The SLURM job of ``env`` (``SLURM_JOB_ID`` set), else None."""
    if not env.get("SLURM_JOB_ID"):
        return None
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or ""
    hosts = tuple(expand_hostlist(nodelist)) if nodelist else ()
    if not hosts:
        hosts = (env.get("SLURMD_NODENAME") or "localhost",)
    cpus_text = env.get("SLURM_JOB_CPUS_PER_NODE") or ""
    cpus = tuple(expand_counts(cpus_text)) if cpus_text else ()
    if len(cpus) != len(hosts):
        per_node = int(env.get("SLURM_CPUS_ON_NODE") or 1)
        cpus = (per_node,) * len(hosts)
    mib = 2**20
    if env.get("SLURM_MEM_PER_NODE"):
        memory = (int(env["SLURM_MEM_PER_NODE"]) * mib,) * len(hosts)
    elif env.get("SLURM_MEM_PER_CPU"):
        memory = tuple(int(env["SLURM_MEM_PER_CPU"]) * mib * c for c in cpus)
    else:
        memory = ()
    tasks = int(env.get("SLURM_NTASKS") or env.get("SLURM_NPROCS") or len(hosts))
    step_tasks = 0
    if env.get("SLURM_STEP_ID") not in (None, "", "batch", "extern", "interactive"):
        step_tasks = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or 1)
    return Allocation(
        kind="slurm",
        job_id=env["SLURM_JOB_ID"],
        hosts=hosts,
        cpus=cpus,
        tasks=tasks,
        memory=memory,
        step_tasks=step_tasks,
    )


FILTERS = {"slurm_time": slurm_time, "slurm_memory": slurm_memory}
TEMPLATE_VARIABLES = {"max_requeues": MAX_REQUEUES}


class Slurm(Scheduler):
    """SLURM (``sbatch``, ``salloc``, ``srun``), and sites' ``--clusters`` federations."""

    kind = "slurm"
    label = "SLURM"
    submit_program = "sbatch"
    job_variables = ("SLURM_JOB_ID",)
    reserved_directives = RESERVED_DIRECTIVES
    detect_order = 0
    filters = FILTERS
    template_variables = TEMPLATE_VARIABLES
    example_directives = ("--constraint=haswell", "--qos=long")
    node_variables = ("SLURMD_NODENAME",)
    cpu_variables = ("SLURM_CPUS_ON_NODE",)
    scratch_variables = ("SLURM_TMPDIR",)
    task_variables = ("SLURM_PROCID",)
    memory_hint = "--mem-per-cpu=2G"
    jobqueue = JobqueueFlavour(
        cluster_class="SLURMCluster",
        section="slurm",
        scratch="${SLURM_TMPDIR:-${TMPDIR:-/tmp}}",
        queue_command="squeue",
    )

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> Allocation | None:
        """The SLURM job this process runs in (``SLURM_JOB_ID``), with its nodes and CPUs."""
        return detect_slurm(environ)

    def check_allocation(self, allocation: Allocation) -> None:
        """Refuse a driver started as several tasks of ``srun``: each would start workers."""
        if allocation.step_tasks > 1:
            raise ClusterError(
                f"hpctune run is running as {allocation.step_tasks} tasks of srun; start it once "
                "(without srun) in the batch script or the salloc shell: it starts the workers "
                "itself"
            )

    def check_layout(
        self, allocation: Allocation, host: str, cpus: int, workers: int, threads: int
    ) -> None:
        """srun binds each task to its CPUs: more workers x threads than CPUs cannot start."""
        if workers * threads > cpus:
            raise AllocationError(
                f"cluster.workers x cluster.threads = {workers} x {threads} CPUs per node, but "
                f"the allocation has {cpus} CPU(s) on {host}; lower them or ask for more CPUs"
            )

    def launcher(self, allocation: Allocation) -> Launcher:
        """srun, as one step (``--overlap`` inside a step: salloc's own or an srun shell)."""
        if shutil.which("srun") is None:
            raise AllocationError("cluster.mode allocation: srun is not on PATH in this SLURM job")
        return SrunLauncher(inside_step=allocation.step_tasks > 0)

    def submit_command(
        self, script: str, *, after: Sequence[Dependency] = (), cluster: str | None = None
    ) -> list[str]:
        """``sbatch --parsable [--clusters=C] [--dependency=TYPE:ID,...] SCRIPT``."""
        command = ["sbatch", "--parsable", *_clusters(cluster)]
        if after:
            value = ",".join(f"{d.type}:{':'.join(d.job_ids)}" for d in after)
            command.append(f"--dependency={value}")
        return [*command, script]

    def parse_job_id(self, stdout: str, command: Sequence[str]) -> tuple[str, str | None]:
        """``sbatch --parsable`` prints ``ID`` or ``ID;cluster`` (after any warnings)."""
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        match = PARSABLE.match(lines[-1]) if lines else None
        if not match:
            raise bad_output(command, stdout, "a job id such as 1234 or 1234;cluster")
        return match.group(1), match.group(2)

    # ------------------------------------------------------------------ states

    def states(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobState]:
        """sacct where accounting answers; else squeue, and scontrol for the rest."""
        found: dict[str, JobState] = {}
        by_cluster: dict[str | None, list[str]] = {}
        for job_id, cluster in jobs:
            by_cluster.setdefault(cluster, []).append(job_id)
        for cluster, ids in by_cluster.items():
            found.update(self._sacct(ids, cluster))
            queued = self._squeue([i for i in ids if i not in found], cluster)
            for job_id in ids:
                if job_id in found:
                    continue
                queued_tasks = queued.get(job_id, {})
                tasks = {task: state for task, (state, _reason) in queued_tasks.items()}
                # A plain job in the queue is known; otherwise ask scontrol, which also knows
                # finished jobs (for MinJobAge) and the finished tasks of an array.
                if list(tasks) == [job_id]:
                    reason = queued_tasks[job_id][1]
                    found[job_id] = _summary(job_id, tasks, "squeue", reason=_reason(reason))
                    continue
                state = self._scontrol(job_id, cluster)
                if state is None and tasks:
                    state = _summary(job_id, tasks, "squeue")
                found[job_id] = state or JobState.unknown(job_id)
        return found

    def _sacct(self, ids: list[str], cluster: str | None) -> dict[str, JobState]:
        """States from accounting; {} where it is not configured (no slurmdbd)."""
        command = [
            "sacct", "--noheader", "--parsable2", "--allocations", *_clusters(cluster),
            "--format=JobID,State,ExitCode", f"--jobs={','.join(ids)}",
        ]  # fmt: skip
        proc = run_command(command, check=False)
        if proc.returncode != 0:
            return {}
        tasks: dict[str, dict[str, str]] = {}
        codes: dict[str, int | None] = {}
        for line in proc.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) < 3 or not parts[0]:
                continue
            task, state, code = parts[0], parts[1].split()[0] if parts[1] else "UNKNOWN", parts[2]
            base = _base_id(task)
            tasks.setdefault(base, {})[task] = state
            if task == base:
                codes[base] = _exit_code(code)
        return {
            job_id: _summary(job_id, tasks[job_id], "sacct", exit_code=codes.get(job_id))
            for job_id in ids
            if job_id in tasks
        }

    def _squeue(self, ids: list[str], cluster: str | None) -> dict[str, dict[str, tuple[str, str]]]:
        """Queued jobs and array tasks (one line per task): {job id: {task: (state, reason)}}."""
        if not ids:
            return {}
        command = [
            "squeue", "--noheader", "--array", *_clusters(cluster),
            "--format=%i|%T|%r", f"--jobs={','.join(ids)}",
        ]  # fmt: skip
        proc = run_command(command, check=False)
        if proc.returncode != 0:
            return {}  # every id has left the queue ("Invalid job id specified")
        queued: dict[str, dict[str, tuple[str, str]]] = {}
        for line in proc.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                queued.setdefault(_base_id(parts[0]), {})[parts[0]] = (parts[1], parts[2])
        return queued

    def _scontrol(self, job_id: str, cluster: str | None) -> JobState | None:
        command = ["scontrol", *_clusters(cluster), "--oneliner", "show", "job", job_id]
        proc = run_command(command, check=False)
        if proc.returncode != 0:
            return None
        records = [parse_key_values(line) for line in proc.stdout.splitlines() if line.strip()]
        tasks: dict[str, str] = {}
        for record in records:
            if record.get("ArrayTaskId"):
                key = f"{record.get('ArrayJobId', record.get('JobId'))}_{record['ArrayTaskId']}"
            else:
                key = record.get("JobId", job_id)
            tasks[key] = record.get("JobState", "UNKNOWN")
        if not tasks:
            return None
        single = records[0] if len(records) == 1 else {}
        reason = single.get("Reason")
        return _summary(
            job_id,
            tasks,
            "scontrol",
            exit_code=_exit_code(single.get("ExitCode")) if single else None,
            reason=_reason(reason),
        )

    # ------------------------------------------------------------------ cancel, limits

    def cancel(self, jobs: Sequence[tuple[str, str | None]]) -> list[str]:
        """``scancel`` per cluster."""
        by_cluster: dict[str | None, list[str]] = {}
        for job_id, cluster in jobs:
            by_cluster.setdefault(cluster, []).append(job_id)
        commands = []
        for cluster, ids in by_cluster.items():
            command = ["scancel", *_clusters(cluster), *ids]
            run_command(command)
            commands.append(" ".join(command))
        return commands

    def max_array_size(self) -> int | None:
        """Tasks per array: indices run 0 .. MaxArraySize - 1."""
        proc = run_command(["scontrol", "show", "config"])
        match = MAX_ARRAY.search(proc.stdout)
        return int(match.group(1)) if match else None
