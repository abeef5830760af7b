"""What the batch system gave this job: its nodes and their CPUs, read from the environment.

SLURM (``sbatch``, ``salloc``): ``SLURM_JOB_ID``, ``SLURM_JOB_NODELIST`` (e.g. ``node[1-2]``),
``SLURM_JOB_CPUS_PER_NODE`` (e.g. ``32(x2),16``), ``SLURM_NTASKS``, ``SLURM_MEM_PER_NODE`` or
``SLURM_MEM_PER_CPU`` (MB), and inside ``srun`` ``SLURM_STEP_ID`` / ``SLURM_STEP_NUM_TASKS``.

PBS Pro and Torque (``qsub``, ``qsub -I``): ``PBS_JOBID`` and ``PBS_NODEFILE``, one line per slot
(one per MPI process on PBS Pro, one per core on Torque), plus ``NCPUS`` (PBS Pro) or
``PBS_NUM_PPN`` (Torque) for the cores of a node.

Nothing here starts a process; :mod:`hpctune.launch` starts the workers.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import AllocationError
from .spec import ClusterSpec

log = logging.getLogger("hpctune")

LOW_WORKER_MEMORY = 2**30
"""Below this much memory per worker process (a worker with scikit-learn loaded uses about
300-400 MiB before any data), a warning says to ask for more."""

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_CPUS = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


@dataclass(frozen=True)
class Allocation:
    """The nodes of the current SLURM or PBS job, in the scheduler's order."""

    kind: Literal["slurm", "pbs"]
    job_id: str
    hosts: tuple[str, ...]
    cpus: tuple[int, ...]
    """CPUs of each host (same order as ``hosts``)."""
    tasks: int
    """Tasks (SLURM) or node-file slots (PBS) of the job."""
    memory: tuple[int | None, ...] = ()
    """Bytes of memory per host, when the scheduler says."""
    step_tasks: int = 0
    """Inside ``srun``: the tasks of that step (0 outside a step)."""
    first_slots: tuple[int, ...] = ()
    """PBS: for each host, the index of its first line in ``$PBS_NODEFILE``."""

    @property
    def multi(self) -> bool:
        """More than one node or task: worth a cluster across the allocation."""
        return len(self.hosts) > 1 or self.tasks > 1

    def memory_of(self, index: int) -> int | None:
        return self.memory[index] if index < len(self.memory) else None


def detect(environ: Mapping[str, str] | None = None) -> Allocation | None:
    """The allocation this process runs in, or None outside SLURM and PBS jobs."""
    env = os.environ if environ is None else environ
    if env.get("SLURM_JOB_ID"):
        return _slurm(env)
    if env.get("PBS_JOBID") and env.get("PBS_NODEFILE"):
        return _pbs(env)
    return None


def _slurm(env: Mapping[str, str]) -> Allocation:
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


def _pbs(env: Mapping[str, str]) -> Allocation:
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


def expand_hostlist(text: str) -> list[str]:
    """SLURM's compressed host list: ``node[01-03,7],gpu5`` -> node01, node02, node03, node7, gpu5.

    Several bracket groups in one name (``r[1-2]n[1-2]``) expand as a product, like
    ``scontrol show hostnames`` does.
    """
    hosts: list[str] = []
    for item in _split_top_level(text):
        hosts.extend(_expand_one(item))
    return hosts


def _split_top_level(text: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def _expand_one(name: str) -> list[str]:
    open_at = name.find("[")
    if open_at < 0:
        return [name]
    close_at = name.find("]", open_at)
    if close_at < 0:
        raise AllocationError(f"malformed host list entry {name!r}")
    prefix, body, rest = name[:open_at], name[open_at + 1 : close_at], name[close_at + 1 :]
    values: list[str] = []
    for part in body.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            raise AllocationError(f"malformed range {part!r} in host list entry {name!r}")
        low, high = match.group(1), match.group(2) or match.group(1)
        width = len(low)
        values.extend(str(n).zfill(width) for n in range(int(low), int(high) + 1))
    return [prefix + value + tail for value in values for tail in _expand_one(rest)]


def expand_counts(text: str) -> list[int]:
    """SLURM's per-node counts: ``32(x2),16`` -> [32, 32, 16]."""
    counts: list[int] = []
    for part in text.split(","):
        match = _CPUS.match(part.strip())
        if not match:
            raise AllocationError(f"malformed CPU count {part!r} in {text!r}")
        counts.extend([int(match.group(1))] * int(match.group(2) or 1))
    return counts


@dataclass(frozen=True)
class Layout:
    """How many worker processes (each with ``threads`` threads) start on each host."""

    hosts: tuple[str, ...]
    workers: tuple[int, ...]
    threads: int
    memory_limit: tuple[int | None, ...]
    """Bytes per worker process on each host (None: Dask's own estimate)."""

    @property
    def total_workers(self) -> int:
        return sum(self.workers)

    @property
    def slots(self) -> int:
        return self.total_workers * self.threads

    @property
    def uniform(self) -> bool:
        return len(set(self.workers)) == 1

    def describe(self) -> str:
        if self.uniform:
            per_node = f"{self.workers[0]} per node"
        else:
            per_node = ", ".join(f"{h}: {w}" for h, w in zip(self.hosts, self.workers, strict=True))
        return (
            f"{self.total_workers} workers ({per_node}) x {self.threads} thread(s) "
            f"on {len(self.hosts)} node(s)"
        )


def plan_layout(allocation: Allocation, spec: ClusterSpec) -> Layout:
    """Workers per host: ``cluster.workers`` if given, else as many as the host's CPUs allow
    with ``cluster.threads`` threads each, so that every allocated core works."""
    threads = spec.threads
    workers = []
    for host, cpus in zip(allocation.hosts, allocation.cpus, strict=True):
        wanted = spec.workers or max(1, cpus // threads)
        if allocation.kind == "slurm" and wanted * threads > cpus:
            raise AllocationError(
                f"cluster.workers x cluster.threads = {wanted} x {threads} CPUs per node, but "
                f"the allocation has {cpus} CPU(s) on {host}; lower them or ask for more CPUs"
            )
        workers.append(wanted)
    memory: list[int | None] = []
    for index, count in enumerate(workers):
        node_memory = allocation.memory_of(index)
        memory.append(None if node_memory is None else node_memory // count)
    known = [m for m in memory if m is not None]
    if known and min(known) < LOW_WORKER_MEMORY:
        log.warning(
            "each worker gets %d MiB of the allocation's memory: Dask pauses a worker at 80%% "
            "of it; ask for more memory (e.g. --mem-per-cpu=2G) if workers pause or restart",
            min(known) // 2**20,
        )
    return Layout(
        hosts=allocation.hosts, workers=tuple(workers), threads=threads, memory_limit=tuple(memory)
    )
