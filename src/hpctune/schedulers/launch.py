"""What every launcher shares: the worker command, and the commands that start it on hosts.

A :class:`Launcher` turns a :class:`Layout` (workers per host) and one worker command into the
commands that start the workers where the batch system put the job. Each scheduler module has
its own (``srun``, ``pbsdsh``, ``blaunch`` ...); ``mpiexec -n 1 -host HOST`` (Open MPI, MPICH and
Intel MPI all take this form) is the one any of them may fall back to.
"""

from __future__ import annotations

import os
import shlex
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


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
        """Worker processes on all hosts."""
        return sum(self.workers)

    @property
    def slots(self) -> int:
        """Tasks that run at once over all workers."""
        return self.total_workers * self.threads

    @property
    def uniform(self) -> bool:
        """The same number of workers on every host (``srun --ntasks-per-node``)."""
        return len(set(self.workers)) == 1

    def describe(self) -> str:
        """One line for the log: workers, per node, threads, nodes."""
        if self.uniform:
            per_node = f"{self.workers[0]} per node"
        else:
            per_node = ", ".join(f"{h}: {w}" for h, w in zip(self.hosts, self.workers, strict=True))
        return (
            f"{self.total_workers} workers ({per_node}) x {self.threads} thread(s) "
            f"on {len(self.hosts)} node(s)"
        )


#: Thread pools of numerical libraries: one thread each, since Dask runs ``threads`` tasks at
#: once in every worker and each fit should not start a pool as large as the node.
THREAD_LIMITS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

#: What a job script's ``module load`` / ``source venv/bin/activate`` changes, passed on
#: explicitly where the launcher starts tasks with the job's original environment (pbsdsh,
#: mpiexec of Open MPI), so that workers run the same Python with the same libraries.
PASSED_ON = (
    "PATH",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "DASK_CONFIG",
)


def worker_environment() -> dict[str, str]:
    """Variables every worker process gets (besides the driver's own environment)."""
    env = dict.fromkeys(THREAD_LIMITS, "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def passed_on(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The driver's variables of :data:`PASSED_ON`, if set. (Only these: a command line is
    visible to every user of the node, the environment is not.)"""
    env = os.environ if environ is None else environ
    return {k: env[k] for k in PASSED_ON if k in env}


def worker_command(
    address: str,
    *,
    threads: int,
    tls_args: Sequence[str],
    memory_limit: int | None = None,
    interface: str | None = None,
    nworkers: int | None = None,
    death_timeout: float = 60.0,
) -> list[str]:
    """``python -m hpctune.worker ADDRESS ...``: a nanny and its worker process (the nanny
    restarts the worker when it dies); HTTP endpoints on localhost only."""
    command = [
        sys.executable,
        "-m",
        "hpctune.worker",
        address,
        "--nthreads",
        str(threads),
        "--memory-limit",
        str(memory_limit) if memory_limit else "auto",
        "--nanny",
        "--no-dashboard",
        "--dashboard-address",
        "127.0.0.1:0",
        "--death-timeout",
        f"{death_timeout:g}",
        *tls_args,
    ]
    if interface:
        command += ["--interface", interface]
    if nworkers is not None:
        command += ["--nworkers", str(nworkers)]
    return command


@dataclass(frozen=True)
class LaunchCommand:
    """One command that starts workers: a launcher's argv and how its environment differs
    from the driver's."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Added to the driver's environment for this command."""
    unset: tuple[str, ...] = ()
    """Removed from the driver's environment for this command."""

    def shell(self) -> str:
        """The command as a shell line, for the log."""
        return shlex.join(self.argv)


class Launcher(ABC):
    """Builds the commands that start a layout's workers on their hosts."""

    name: str = ""

    @abstractmethod
    def commands(
        self, layout: Layout, worker: WorkerSpec, env: Mapping[str, str]
    ) -> list[LaunchCommand]:
        """The commands that start ``layout``'s workers (``worker``) with ``env`` added."""

    @staticmethod
    def host_command(
        layout: Layout, worker: WorkerSpec, env: Mapping[str, str], index: int
    ) -> list[str]:
        """The workers of the layout's host ``index``, for a launcher that starts its tasks
        with the job's environment, not the caller's: ours is passed on with ``env``."""
        return [
            "env",
            *(f"{k}={v}" for k, v in {**passed_on(), **env}.items()),
            f"HPCTUNE_NODE_NAME={layout.hosts[index]}",
            *worker.command(
                layout.threads, layout.memory_limit[index], nworkers=layout.workers[index]
            ),
        ]


@dataclass(frozen=True)
class WorkerSpec:
    """Everything of a worker command except how many start per host."""

    address: str
    tls_args: tuple[str, ...]
    interface: str | None = None
    death_timeout: float = 60.0

    def command(self, threads: int, memory: int | None, nworkers: int | None = None) -> list[str]:
        """The worker command with ``threads`` threads, ``memory`` bytes, ``nworkers`` nannies."""
        return worker_command(
            self.address,
            threads=threads,
            tls_args=self.tls_args,
            memory_limit=memory,
            interface=self.interface,
            nworkers=nworkers,
            death_timeout=self.death_timeout,
        )


class MpiexecLauncher(Launcher):
    """``mpiexec -n 1 -host HOST`` per host, each starting that host's workers."""

    name = "mpiexec"

    def __init__(self, executable: str = "mpiexec"):
        self.executable = executable

    def commands(
        self, layout: Layout, worker: WorkerSpec, env: Mapping[str, str]
    ) -> list[LaunchCommand]:
        return [
            LaunchCommand(
                [
                    self.executable,
                    "-n",
                    "1",
                    "-host",
                    host,
                    *self.host_command(layout, worker, env, i),
                ]
            )
            for i, host in enumerate(layout.hosts)
        ]
