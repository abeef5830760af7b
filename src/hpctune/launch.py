"""Start Dask workers on the nodes of an allocation, and stop them again.

A :class:`Launcher` turns a :class:`~hpctune.allocation.Layout` and one worker command into the
commands that start the workers where the batch system put the job:

- ``srun`` (SLURM): one job step, one worker process per task, ``cluster.threads`` CPUs each.
- ``pbsdsh`` (PBS Pro: ``pbsdsh -n INDEX --``; Torque: ``pbsdsh -h HOST``): one command per
  host, which starts that host's workers (``--nworkers``).
- ``mpiexec -n 1 -host HOST`` (Open MPI, MPICH and Intel MPI all take this form), where
  ``pbsdsh`` is missing.

:class:`WorkerProcesses` runs those commands, each in its own process group (a Ctrl-C at the
terminal reaches the driver, which then stops the workers in order), with their output in a
log file, and ends them all when the run is over.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .allocation import Allocation, Layout
from .errors import AllocationError

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
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Added to the driver's environment for this command."""
    unset: tuple[str, ...] = ()
    """Removed from the driver's environment for this command."""

    def shell(self) -> str:
        return shlex.join(self.argv)


class Launcher(ABC):
    """Builds the commands that start a layout's workers on their hosts."""

    name: str = ""

    @abstractmethod
    def commands(
        self, layout: Layout, worker: WorkerSpec, env: Mapping[str, str]
    ) -> list[LaunchCommand]: ...

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
        return worker_command(
            self.address,
            threads=threads,
            tls_args=self.tls_args,
            memory_limit=memory,
            interface=self.interface,
            nworkers=nworkers,
            death_timeout=self.death_timeout,
        )


class SrunLauncher(Launcher):
    """One ``srun`` job step over the allocation, one worker process per task."""

    name = "srun"

    def __init__(self, *, inside_step: bool = False, executable: str = "srun"):
        self.inside_step = inside_step
        self.executable = executable

    def commands(
        self, layout: Layout, worker: WorkerSpec, env: Mapping[str, str]
    ) -> list[LaunchCommand]:
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


def launcher_for(allocation: Allocation, scheduler_kind: str = "pbs") -> Launcher:
    """The launcher for this allocation: srun on SLURM; pbsdsh (or mpiexec) on PBS."""
    if allocation.kind == "slurm":
        if shutil.which("srun") is None:
            raise AllocationError("cluster.mode allocation: srun is not on PATH in this SLURM job")
        return SrunLauncher(inside_step=allocation.step_tasks > 0)
    flavour = "torque" if scheduler_kind == "torque" else "pbs"
    if shutil.which("pbsdsh"):
        return PbsdshLauncher(flavour, allocation.first_slots)
    if shutil.which("mpiexec"):
        return MpiexecLauncher()
    raise AllocationError(
        "cluster.mode allocation: neither pbsdsh nor mpiexec is on PATH in this PBS job, "
        "so workers cannot start on the other nodes (load the MPI module, or use mode jobqueue)"
    )


class WorkerProcesses:
    """The launcher processes of one run, each in its own process group."""

    def __init__(self, commands: Sequence[LaunchCommand], log_path: Path) -> None:
        self.commands = list(commands)
        self.log_path = log_path
        self.processes: list[subprocess.Popen[bytes]] = []
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        for command in self.commands:
            env = {k: v for k, v in os.environ.items() if k not in command.unset}
            env.update(command.env)
            self._log.write(f"$ {command.shell()}\n".encode())
            self._log.flush()
            try:
                process = subprocess.Popen(
                    command.argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                self.stop()
                raise AllocationError(f"cannot start {command.argv[0]}: {exc}") from None
            self.processes.append(process)

    def exited(self) -> list[tuple[LaunchCommand, int]]:
        """Commands whose process has ended, with its exit code."""
        return [
            (command, code)
            for command, process in zip(self.commands, self.processes, strict=False)
            if (code := process.poll()) is not None
        ]

    def all_exited(self) -> bool:
        return bool(self.processes) and all(p.poll() is not None for p in self.processes)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """Wait up to ``timeout`` s for the launchers to end (the workers leave when the
        scheduler closes), then SIGTERM their process groups, then SIGKILL."""
        deadline = time.monotonic() + timeout
        self._wait_until(deadline)
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            alive = [p for p in self.processes if p.poll() is None]
            if not alive:
                break
            for process in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, sig)
            self._wait_until(time.monotonic() + grace)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _wait_until(self, deadline: float) -> None:
        for process in self.processes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=remaining)
