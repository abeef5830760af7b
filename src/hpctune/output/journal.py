"""Journals: append-only logs of finished partitions, one per writing process.

A record is ``MAGIC, length, crc32, JSON``, appended with one ``write`` after the partition's
model file is in place, so a record is the commit point of a partition: a torn record at the
end of a journal (a process killed while writing) fails its checksum and is ignored.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from .files import io_error

MAGIC = b"HPTJ"
HEADER = struct.Struct("<4sII")


class Journal:
    """Append-only log of finished partitions for one writing process."""

    def __init__(self, folder: Path, sync_seconds: float = 2.0) -> None:
        host = socket.gethostname().split(".")[0]
        self.path = folder / f"{host}-{os.getpid()}-{secrets.token_hex(3)}.log"
        self.sync_seconds = sync_seconds
        self._fd: int | None = None
        self._last_sync = time.monotonic()
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        payload = json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
        frame = HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
        try:
            with self._lock:
                if self._fd is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                written = os.write(self._fd, frame)
            if written != len(frame):
                raise OSError(errno.ENOSPC, "short write")
            now = time.monotonic()
            if now - self._last_sync >= self.sync_seconds:
                os.fsync(self._fd)
                self._last_sync = now
        except OSError as exc:
            raise io_error("append to", self.path, exc) from None

    def close(self) -> None:
        """Flush to disk and close; safe to call again, or from another thread."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(fd)
            with contextlib.suppress(OSError):
                os.close(fd)


def read_journal(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Valid records of one journal, and how many bytes at its end were torn or damaged."""
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    offset = 0
    while offset + HEADER.size <= len(data):
        magic, length, crc = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        payload = data[start : start + length]
        if magic != MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            break
        try:
            records.append(json.loads(payload))
        except ValueError:
            break
        offset = start + length
    return records, len(data) - offset
