"""PBS Professional (and OpenPBS) and Torque: everything hpctune knows about them.

- Job scripts: ``#PBS`` directives (``pbs.sh.j2`` with select chunks, ``torque.sh.j2`` with
  ``nodes=N:ppn=C``).
- ``qsub``, ``qstat``, ``qdel``, and the server's array limit from ``qstat -B -f``.
- Inside a job (``qsub``, ``qsub -I``): ``PBS_JOBID`` and ``PBS_NODEFILE``, one line per slot
  (one per MPI process on PBS Pro, one per core on Torque), plus ``NCPUS`` (PBS Pro) or
  ``PBS_NUM_PPN`` (Torque) for the cores of a node. Workers start with one ``pbsdsh`` per host
  (PBS Pro: ``pbsdsh -n INDEX --``; Torque: ``pbsdsh -h HOST``), or ``mpiexec`` where it is
  missing.
- dask-jobqueue's ``PBSCluster`` (with Torque's ``resource_spec``).

``qstat -f`` prints one block per job::

    Job Id: 1234.server
        Job_Name = demo
        job_state = R
        Variable_List = PBS_O_HOME=/home/alice,PBS_O_LANG=C,
    \tPBS_O_WORKDIR=/home/alice

Attributes are indented ``key = value`` lines; a long value goes on over lines that begin with
a tab. PBS Professional also prints JSON (``qstat -f -F json``) and keeps finished jobs for
``qstat -x`` (state ``F``); Torque shows finished jobs as ``C`` for a while (keep_completed).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import AllocationError
from ..units import hms, whole_size
from .base import Allocation, JobqueueFlavour, Scheduler
from .commands import bad_output, run_command
from .jobs import Dependency, JobState, summarise
from .launch import LaunchCommand, Launcher, Layout, MpiexecLauncher, WorkerSpec

#: Job states of PBS Professional and Torque (one letter each).
PHASE = {
    "Q": "pending",  # queued
    "H": "pending",  # held
    "W": "pending",  # waiting for its start time
    "T": "pending",  # being moved
    "M": "pending",  # moved to another server
    "R": "running",
    "E": "running",  # exiting
    "B": "running",  # an array whose subjobs have begun (PBS Professional)
    "S": "running",  # suspended
    "U": "running",  # suspended while the workstation is busy
    "F": "done",  # finished (PBS Professional, qstat -x)
    "X": "done",  # a finished subjob (PBS Professional)
    "C": "done",  # completed (Torque)
}
ATTRIBUTE = re.compile(r"^\s+([A-Za-z_][\w.]*) = ?(.*)$")
JOB_ID_LINE = re.compile(r"^Job Id:\s*(\S+)")
QSUB_ID = re.compile(r"^(\d+(?:\[\d*\])?(?:\.[A-Za-z0-9._-]+)?)$")
SERVER_ATTRIBUTE = re.compile(r"^\s+(max_array_size|max_job_array_size) = (\d+)", re.MULTILINE)


def parse_qstat_f(text: str) -> dict[str, dict[str, str]]:
    """``qstat -f`` text (PBS Professional or Torque) as {job id: {attribute: value}}."""
    jobs: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    last_key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        head = JOB_ID_LINE.match(line)
        if head:
            current = jobs.setdefault(head.group(1), {})
            last_key = None
            continue
        if current is None:
            continue
        attribute = ATTRIBUTE.match(line)
        if attribute:
            last_key = attribute.group(1)
            current[last_key] = attribute.group(2).strip()
        elif last_key is not None and line[:1] == "\t":
            current[last_key] += line[1:].rstrip()  # the value goes on (wrapped mid-word)
    return jobs


def parse_qstat_json(text: str) -> dict[str, dict[str, Any]]:
    """``qstat -f -F json`` (PBS Professional) as {job id: {attribute: value}}."""
    data = json.loads(text)
    jobs = data.get("Jobs", {}) if isinstance(data, dict) else {}
    return {str(k): v for k, v in jobs.items() if isinstance(v, dict)}


def _attribute(attributes: dict[str, Any], name: str) -> Any:
    for key, value in attributes.items():
        if key.lower() == name.lower():
            return value
    return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _short(job_id: str) -> str:
    """``1234.server`` -> ``1234``; ``1234[].server`` -> ``1234[]``."""
    return job_id.split(".", 1)[0]


def _array_parent(job_id: str) -> str | None:
    """``1234[5].server`` -> ``1234[]`` (the short id of its array)."""
    match = re.match(r"^(\d+)\[(\d+)\]", job_id)
    return f"{match.group(1)}[]" if match else None


def pbs_time(seconds: int) -> str:
    """``HH:MM:SS`` with as many hours as needed, as PBS ``walltime`` reads it."""
    return hms(seconds)


def pbs_memory(size: int) -> str:
    """PBS ``mem`` value: whole tb, gb or mb (PBS counts these in powers of two)."""
    number, unit = whole_size(int(size), [("tb", 2**40), ("gb", 2**30), ("mb", 2**20)])
    return f"{number}{unit}"


def detect_pbs(env: Mapping[str, str]) -> Allocation | None:
    """The PBS or Torque job of ``env`` (``PBS_JOBID`` and ``PBS_NODEFILE`` set), else None."""
    if not (env.get("PBS_JOBID") and env.get("PBS_NODEFILE")):
        return None
    path = Path(env["PBS_NODEFILE"])
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise AllocationError(f"cannot read PBS_NODEFILE {path}: {exc}") from None
    if not lines:
        raise AllocationError(f"PBS_NODEFILE {path} lists no hosts")
    slots: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, line in enumerate(lines):
        slots[line] = slots.get(line, 0) + 1
        first.setdefault(line, index)
    cores = int(env.get("NCPUS") or env.get("PBS_NUM_PPN") or 0)
    hosts = tuple(slots)
    return Allocation(
        kind="pbs",
        job_id=env["PBS_JOBID"],
        hosts=hosts,
        cpus=tuple(max(slots[h], cores) for h in hosts),
        tasks=len(lines),
        first_slots=tuple(first[h] for h in hosts),
    )


class PbsdshLauncher(Launcher):
    """One ``pbsdsh`` per host, each starting that host's workers with ``--nworkers``."""

    name = "pbsdsh"

    def __init__(
        self,
        flavour: str = "pbs",
        first_slots: Sequence[int] = (),
        executable: str = "pbsdsh",
    ):
        if flavour not in {"pbs", "torque"}:
            raise ValueError(f"flavour must be 'pbs' or 'torque'; got {flavour!r}")
        self.flavour = flavour
        self.first_slots = tuple(first_slots)
        """For each host, the index of its first line in ``$PBS_NODEFILE`` (PBS Pro's ``-n``)."""
        self.executable = executable

    def commands(
        self, layout: Layout, worker: WorkerSpec, env: Mapping[str, str]
    ) -> list[LaunchCommand]:
        """``pbsdsh -n SLOT --`` (PBS Pro) or ``pbsdsh -h HOST`` (Torque) per host."""
        out = []
        for index, host in enumerate(layout.hosts):
            command = self.host_command(layout, worker, env, index)
            if self.flavour == "torque":
                target = ["-h", host]
            else:
                slot = self.first_slots[index] if index < len(self.first_slots) else index
                target = ["-n", str(slot), "--"]
            out.append(LaunchCommand([self.executable, *target, *command]))
        return out


def _torque_resources(cores: int, memory: Any, conf: Callable[[str], Any]) -> dict[str, Any]:
    """Torque's ``-l nodes=1:ppn=C,mem=Mmb`` for a worker job, unless jobqueue.yaml sets it."""
    if conf("resource-spec") is not None:
        return {}
    mem_mb = math.ceil(int(memory) / 2**20) if isinstance(memory, int) else None
    return {"resource_spec": f"nodes=1:ppn={cores}" + (f",mem={mem_mb}mb" if mem_mb else "")}


#: Directives that hpctune writes itself from a spec key (or a submit option); a
#: ``-l RESOURCE`` request is keyed by its resource.
PBSPRO_DIRECTIVES: dict[str, str] = {
    "-N": "name",
    "-q": "scheduler.queue",
    "-A": "scheduler.account",
    "-J": "submit --array",
    "-l select": "scheduler.nodes, cores_per_node and memory",
    "-l walltime": "scheduler.walltime",
}
TORQUE_DIRECTIVES: dict[str, str] = {
    "-N": "name",
    "-q": "scheduler.queue",
    "-A": "scheduler.account",
    "-t": "submit --array",
    "-l nodes": "scheduler.nodes and cores_per_node",
    "-l mem": "scheduler.memory",
    "-l walltime": "scheduler.walltime",
}
FILTERS = {"pbs_time": pbs_time, "pbs_memory": pbs_memory}


class PBSPro(Scheduler):
    """PBS Professional / OpenPBS."""

    kind = "pbs"
    label = "PBS"
    submit_program = "qsub"
    array_dependency = "afterany"
    job_variables = ("PBS_JOBID",)
    reserved_directives = PBSPRO_DIRECTIVES
    detect_order = 10
    filters = FILTERS
    example_directives = ("-m abe",)
    node_variables = ("PBS_NODENAME",)
    cpu_variables = ("NCPUS", "PBS_NUM_PPN")
    jobqueue = JobqueueFlavour(
        cluster_class="PBSCluster", section="pbs", scratch="${TMPDIR:-/tmp}", queue_command="qstat"
    )

    def directive_key(self, directive: str) -> str:
        """The option, or ``-l RESOURCE`` for a resource request."""
        option = super().directive_key(directive)
        if option == "-l":
            resource = re.split(r"[= ]", directive.strip()[2:].strip(), maxsplit=1)[0]
            return f"-l {resource}" if resource else option
        return option

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> Allocation | None:
        """The PBS job this process runs in: its hosts and slots from ``$PBS_NODEFILE``."""
        return detect_pbs(environ)

    def launcher(self, allocation: Allocation) -> Launcher:
        """pbsdsh (``-n`` on PBS Pro, ``-h`` on Torque), else mpiexec."""
        if shutil.which("pbsdsh"):
            flavour = "torque" if self.kind == "torque" else "pbs"
            return PbsdshLauncher(flavour, allocation.first_slots)
        if shutil.which("mpiexec"):
            return MpiexecLauncher()
        raise AllocationError(
            "cluster.mode allocation: neither pbsdsh nor mpiexec is on PATH in this PBS job, "
            "so workers cannot start on the other nodes (load the MPI module, or use mode "
            "jobqueue)"
        )

    def submit_command(
        self, script: str, *, after: Sequence[Dependency] = (), cluster: str | None = None
    ) -> list[str]:
        command = ["qsub"]
        if after:
            parts = []
            for dep in after:
                arrays = [i for i in dep.job_ids if "[]" in i]
                if dep.type != "afterany" or not arrays or self.array_dependency == dep.type:
                    parts.append(f"{dep.type}:{':'.join(dep.job_ids)}")
                    continue
                # Torque waits for an array with its own type, for a plain job with afterany:
                # a split array's one-task part is a plain job.
                plain = [i for i in dep.job_ids if "[]" not in i]
                parts.append(f"{self.array_dependency}:{':'.join(arrays)}")
                if plain:
                    parts.append(f"afterany:{':'.join(plain)}")
            command += ["-W", f"depend={','.join(parts)}"]
        return [*command, script]

    def parse_job_id(self, stdout: str, command: Sequence[str]) -> tuple[str, str | None]:
        """qsub prints the job id, e.g. ``1234.server`` or ``1234[].server`` for an array."""
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        if not lines or not QSUB_ID.match(lines[-1]):
            raise bad_output(command, stdout, "a job id such as 1234.server")
        return lines[-1], None

    # ------------------------------------------------------------------ states

    def query(self, job_ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], str]:
        """Attributes of the jobs (and of array subjobs) from qstat."""
        command = ["qstat", "-f", "-x", "-t", "-F", "json", *job_ids]
        proc = run_command(command, check=False)
        # Unknown ids make qstat exit non-zero but it still prints the jobs it knows.
        if proc.stdout.lstrip().startswith("{"):
            try:
                return parse_qstat_json(proc.stdout), "qstat"
            except ValueError:
                pass
        command = ["qstat", "-f", "-x", "-t", *job_ids]
        proc = run_command(command, check=False)
        return parse_qstat_f(proc.stdout), "qstat"

    def states(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobState]:
        """qstat of every job (array subjobs included): the state of each, or of its tasks."""
        ids = [job_id for job_id, _cluster in jobs]
        if not ids:
            return {}
        attributes, source = self.query(ids)
        by_short: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for full_id, attrs in attributes.items():
            by_short.setdefault(_short(full_id), []).append((full_id, attrs))
            parent = _array_parent(full_id)
            if parent:
                by_short.setdefault(parent, []).append((full_id, attrs))
        found = {}
        for job_id in ids:
            entries = by_short.get(_short(job_id), [])
            subjobs = [(i, a) for i, a in entries if _array_parent(i)]
            chosen = subjobs or entries
            if not chosen:
                found[job_id] = JobState.unknown(job_id)
                continue
            tasks = {i: str(_attribute(a, "job_state") or "?") for i, a in chosen}
            codes = [_int(_attribute(a, "Exit_status")) for _i, a in chosen]
            known = [c for c in codes if c is not None]
            exit_code = next((c for c in known if c != 0), 0) if known else None
            comment = _attribute(entries[0][1], "comment") if len(entries) == 1 else None
            found[job_id] = summarise(
                job_id,
                tasks,
                PHASE,
                source,
                exit_code=exit_code,
                reason=str(comment) if comment else None,
            )
        return found

    # ------------------------------------------------------------------ cancel, limits

    def cancel(self, jobs: Sequence[tuple[str, str | None]]) -> list[str]:
        """``qdel`` of every job."""
        command = ["qdel", *(job_id for job_id, _cluster in jobs)]
        run_command(command)
        return [" ".join(command)]

    def max_array_size(self) -> int | None:
        """The server's ``max_array_size`` (PBS Pro) or ``max_job_array_size`` (Torque)."""
        proc = run_command(["qstat", "-B", "-f"], check=False)
        match = SERVER_ATTRIBUTE.search(proc.stdout) if proc.returncode == 0 else None
        return int(match.group(2)) if match else None


class Torque(PBSPro):
    """Torque (and qsub wrappers of other schedulers that speak its language)."""

    kind = "torque"
    label = "Torque"
    array_dependency = "afteranyarray"
    reserved_directives = TORQUE_DIRECTIVES
    jobqueue = JobqueueFlavour(
        cluster_class="PBSCluster",
        section="pbs",
        scratch="${TMPDIR:-/tmp}",
        queue_command="qstat",
        extra=_torque_resources,
    )

    def query(self, job_ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], str]:
        """Torque has no JSON and no ``-x``: ``qstat -f`` per job (arrays with ``-t``)."""
        found: dict[str, dict[str, Any]] = {}
        for job_id in job_ids:
            command = ["qstat", "-f", *(["-t"] if "[" in job_id else []), job_id]
            proc = run_command(command, check=False)
            found.update(parse_qstat_f(proc.stdout))
        return found, "qstat"
