"""Run partition searches in a child process, so that a search can be stopped after a timeout.

A fit stuck in compiled code cannot be interrupted from another thread. With ``search.timeout``
set, each worker keeps one child process (started on first use, reused for every partition) and
sends it the partition's rows; when a search overruns, the child is killed, the partition is
recorded as ``failed`` with the reason, and a new child takes the next partition. A child that
dies (a crash, the kernel's out-of-memory killer) fails only the partition it was computing.

Frames on the pipes are a 8-byte length and a pickle; both ends are this package.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import struct
import subprocess
import sys
import time
from typing import Any, BinaryIO

import numpy as np

from ..output.record import PartitionResult
from .partition import PartitionSearch, SearchTimeout, describe_exception

LENGTH = struct.Struct("<Q")
CHILD = "from hpctune.search.sandbox import main; main()"


def _send(stream: BinaryIO, obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _receive(stream: BinaryIO) -> Any:
    (size,) = LENGTH.unpack(_read_exact(stream, LENGTH.size))
    return pickle.loads(_read_exact(stream, size))


class SearchProcess:
    """Runs :class:`PartitionSearch` in a child process with a per-partition time limit."""

    def __init__(self, search: Any, test_start: Any, timeout: float, window: Any = None) -> None:
        self.search = search
        self.test_start = test_start
        self.window = window
        self.timeout = timeout
        self._child: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        # The child imports what this process can: the user's own estimator modules included.
        path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path},
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            _send(child.stdin, (self.search, self.test_start, self.window))
            state, detail = _receive(child.stdout)  # after its imports: not the search's time
        except (EOFError, OSError, pickle.UnpicklingError):
            state, detail = "error", self._died(child)
        if state != "ready":
            with contextlib.suppress(OSError):
                child.kill()
            child.wait()
            raise RuntimeError(f"the search process could not start: {detail}")
        return child

    def run(
        self, index: int, x: np.ndarray, y: np.ndarray, times: np.ndarray, node: str = ""
    ) -> PartitionResult:
        try:
            child = self._child = self._child or self._start()
        except RuntimeError as exc:
            return self._failed(index, node, str(exc))
        assert child.stdin is not None and child.stdout is not None
        try:
            _send(child.stdin, (index, x, y, times, node))
        except (BrokenPipeError, OSError):
            return self._failed(index, node, self._died(child))
        deadline = time.monotonic() + self.timeout
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            while not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                if time.monotonic() >= deadline:
                    self.close()
                    return self._failed(index, node, str(SearchTimeout(self.timeout)))
        try:
            return _receive(child.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            return self._failed(index, node, self._died(child))

    def _died(self, child: subprocess.Popen[bytes]) -> str:
        code = child.wait()
        self._child = None
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return f"the process computing this partition died ({how}): out of memory, or a crash"

    @staticmethod
    def _failed(index: int, node: str, reason: str) -> PartitionResult:
        return PartitionResult(index=index, status="failed", reason=reason, node=node)

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            with contextlib.suppress(OSError):
                child.kill()
            child.wait()


def _serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    search_spec, test_start, window = _receive(stdin)
    try:
        search = PartitionSearch(search_spec, test_start=test_start, window=window)
    except Exception as exc:
        _send(stdout, ("error", describe_exception(exc)))
        return
    _send(stdout, ("ready", None))
    while True:
        try:
            index, x, y, times, node = _receive(stdin)
        except EOFError:
            return
        _send(stdout, search.run(index, x, y, times, node=node))


def main() -> None:
    """Entry point of the child process (started with ``python -c``, see ``CHILD``)."""
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the frames
    _serve(sys.stdin.buffer, frames)
