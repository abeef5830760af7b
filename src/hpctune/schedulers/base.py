"""The interface every batch system implements: :class:`Scheduler`.

A scheduler module (``slurm.py``, ``pbs.py`` ...) holds everything hpctune knows about its batch
system, as one subclass of :class:`Scheduler` with a ``kind``: the directives hpctune writes and
those a spec may not repeat, the template and its filters, submitting, following and cancelling
jobs, what a job sees of its nodes (:meth:`Scheduler.detect`), how workers start on them
(:meth:`Scheduler.launcher`) and dask-jobqueue's class for it (:class:`JobqueueFlavour`).
Defining the subclass registers it; :mod:`hpctune.schedulers.registry` imports the modules.

Nothing here knows the spec: values arrive as seconds, bytes and counts.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import AllocationError
from ..units import hms
from .commands import run_command
from .jobs import Dependency, JobState
from .launch import Launcher

#: kind -> class, in the order the classes were defined (the registry sorts them).
REGISTERED: dict[str, type[Scheduler]] = {}


@dataclass(frozen=True)
class Allocation:
    """The nodes of the current batch job, in the scheduler's order."""

    kind: str
    """The kind of the scheduler that detected it (``pbs`` also for Torque)."""
    job_id: str
    hosts: tuple[str, ...]
    cpus: tuple[int, ...]
    """CPUs of each host (same order as ``hosts``)."""
    tasks: int
    """Tasks (SLURM) or host-file slots (PBS, LSF) of the job."""
    memory: tuple[int | None, ...] = ()
    """Bytes of memory per host, when the scheduler says."""
    step_tasks: int = 0
    """Inside ``srun``: the tasks of that step (0 outside a step)."""
    first_slots: tuple[int, ...] = ()
    """For each host, the index of its first line in the job's host file (PBS, LSF)."""

    @property
    def multi(self) -> bool:
        """More than one node or task: worth a cluster across the allocation."""
        return len(self.hosts) > 1 or self.tasks > 1

    def memory_of(self, index: int) -> int | None:
        """Bytes of memory of host ``index``, None where the scheduler does not say."""
        return self.memory[index] if index < len(self.memory) else None


def _no_extra(cores: int, memory: Any, conf: Callable[[str], Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class JobqueueFlavour:
    """How dask-jobqueue speaks to this batch system (``cluster.mode: jobqueue``)."""

    cluster_class: str
    """``SLURMCluster``, ``PBSCluster`` ..."""
    section: str
    """The section of ``jobqueue.yaml`` its defaults come from."""
    scratch: str
    """The worker's local directory, as the job script's shell expands it."""
    walltime: Callable[[int], str] = hms
    """Seconds as the class's ``walltime`` argument reads them."""
    account_argument: str = "account"
    """The argument that takes ``scheduler.account``."""
    queue_command: str = "squeue"
    """The command that shows waiting worker jobs, named when they do not come."""
    extra: Callable[[int, Any, Callable[[str], Any]], dict[str, Any]] = field(default=_no_extra)
    """More arguments from (cores, memory, the section's settings), e.g. Torque's
    ``resource_spec``; a setting the user's ``jobqueue.yaml`` makes is left to it."""


class Scheduler(ABC):
    """One batch system: everything hpctune knows about it."""

    # identity and spec
    kind: ClassVar[str] = ""
    """``scheduler.kind``; also the template's name and the word in jobs.json."""
    label: ClassVar[str] = ""
    """Its name in messages."""
    submit_program: ClassVar[str] = ""
    """Submits jobs; found on PATH outside a job, it marks a login node."""
    job_variables: ClassVar[tuple[str, ...]] = ()
    """Set inside every job of this batch system."""
    reserved_directives: ClassVar[Mapping[str, str]] = {}
    """Directive (:meth:`directive_key`) -> the spec key or option that writes it: an entry of
    ``scheduler.extra`` may not repeat it."""
    max_grace: ClassVar[int] = 65535
    """The longest ``scheduler.grace`` (SLURM's ``--signal=...@seconds`` bound)."""
    detect_order: ClassVar[int] = 100
    """Lower detects first (SLURM's variables win where a wrapper sets both, as before)."""

    # rendering
    template: ClassVar[str] = ""
    """The job script template; default ``<kind>.sh.j2``."""
    filters: ClassVar[Mapping[str, Callable[..., str]]] = {}
    """Jinja filters of its templates (every scheduler's are available to every template)."""
    template_variables: ClassVar[Mapping[str, Any]] = {}
    """Variables its template sees besides the common ones."""
    example_directives: ClassVar[tuple[str, ...]] = ()
    """``scheduler.extra`` entries of the golden scripts."""

    # inside a job
    node_variables: ClassVar[tuple[str, ...]] = ()
    """Hold this node's name as the scheduler knows it."""
    cpu_variables: ClassVar[tuple[str, ...]] = ()
    """Hold the CPUs the job has on this node."""
    scratch_variables: ClassVar[tuple[str, ...]] = ()
    """Name a node-local scratch folder (``TMPDIR`` is tried after every scheduler's)."""
    task_variables: ClassVar[tuple[str, ...]] = ()
    """Number the tasks of a launcher step: part of a worker's name."""
    memory_hint: ClassVar[str] = ""
    """How a job asks for more memory, shown when workers get little."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind and "kind" in cls.__dict__:
            REGISTERED[cls.kind] = cls
            if "template" not in cls.__dict__:
                cls.template = f"{cls.kind}.sh.j2"

    # ------------------------------------------------------------------ spec

    def directive_key(self, directive: str) -> str:
        """The key of ``directive`` in :attr:`reserved_directives`: its option."""
        return re.split(r"[= ]", directive.strip(), maxsplit=1)[0]

    def reserved_key(self, directive: str) -> str | None:
        """The spec key that writes ``directive`` already, or None."""
        return self.reserved_directives.get(self.directive_key(directive))

    # ------------------------------------------------------------------ inside a job

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> Allocation | None:
        """The allocation of the job this process runs in, None outside one of this kind."""
        return None

    def check_allocation(self, allocation: Allocation) -> None:
        """Raise ClusterError where hpctune may not start workers from here."""
        return None

    def check_layout(
        self, allocation: Allocation, host: str, cpus: int, workers: int, threads: int
    ) -> None:
        """Raise AllocationError where ``workers`` x ``threads`` cannot run on ``host``."""
        return None

    def launcher(self, allocation: Allocation) -> Launcher:
        """The launcher that starts workers on the allocation's hosts."""
        raise AllocationError(f"cluster.mode allocation: no launcher for {self.label} jobs")

    # ------------------------------------------------------------------ submit, follow, cancel

    @abstractmethod
    def submit_command(
        self, script: str, *, after: Sequence[Dependency] = (), cluster: str | None = None
    ) -> list[str]:
        """The words that submit ``script`` (run in its folder); a scheduler that reads the
        script on its standard input ends them with ``"<", script``."""

    @abstractmethod
    def parse_job_id(self, stdout: str, command: Sequence[str]) -> tuple[str, str | None]:
        """The job id (and cluster name, if any) that the submit command printed."""

    def submit(
        self, script: Path, *, after: Sequence[Dependency] = (), cluster: str | None = None
    ) -> tuple[str, str | None, list[str]]:
        """Submit ``script`` from its folder; return (job id, cluster, the command run)."""
        command = self.submit_command(script.name, after=after, cluster=cluster)
        proc = run_command(command, cwd=script.parent)
        job_id, found_cluster = self.parse_job_id(proc.stdout, command)
        return job_id, found_cluster or cluster, command

    @abstractmethod
    def states(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobState]:
        """States of (job id, cluster) pairs, by job id."""

    @abstractmethod
    def cancel(self, jobs: Sequence[tuple[str, str | None]]) -> list[str]:
        """Cancel the jobs; return the commands run."""

    def max_array_size(self) -> int | None:
        """How many tasks one array may have (None: no limit known)."""
        return None

    # ------------------------------------------------------------------ dask-jobqueue

    jobqueue: ClassVar[JobqueueFlavour | None] = None
    """dask-jobqueue's class for this batch system (None: none)."""
