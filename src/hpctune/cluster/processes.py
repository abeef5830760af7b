"""The processes that start Dask workers on the nodes of an allocation, and their end.

Each scheduler's launcher (:meth:`hpctune.schedulers.base.Scheduler.launcher`: ``srun``,
``pbsdsh``, ``mpiexec`` ...) turns a layout and one worker command into the commands that start
the workers where the batch system put the job. :class:`WorkerProcesses` runs those commands,
each in its own process group (a Ctrl-C at the terminal reaches the driver, which then stops the
workers in order), with their output in a log file, and ends them all when the run is over.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ..errors import AllocationError
from ..schedulers.launch import LaunchCommand


class WorkerProcesses:
    """The launcher processes of one run, each in its own process group."""

    def __init__(self, commands: Sequence[LaunchCommand], log_path: Path) -> None:
        self.commands = list(commands)
        self.log_path = log_path
        self.processes: list[subprocess.Popen[bytes]] = []
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start every command, each in a new session, its output in the log file."""
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
        """Every launcher process has ended."""
        return bool(self.processes) and all(p.poll() is not None for p in self.processes)

    def tail(self, lines: int = 15) -> str:
        """The last ``lines`` of the launchers' log, for an error message."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(
        self, timeout: float = 15.0, term_grace: float = 10.0, kill_grace: float = 5.0
    ) -> None:
        """Wait up to ``timeout`` s for the launchers to end (the workers leave when the
        scheduler closes), then SIGTERM their process groups and wait up to ``term_grace`` s,
        then SIGKILL and wait up to ``kill_grace`` s. Returns by then whatever is left."""
        deadline = time.monotonic() + timeout
        self._wait_until(deadline)
        for sig, grace in ((signal.SIGTERM, term_grace), (signal.SIGKILL, kill_grace)):
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
