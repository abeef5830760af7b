"""Journals: append-only logs of finished partitions, one per writing process.

A record is ``MAGIC, length, crc32, JSON``, appended with one ``write`` after the partition's
model is in the process's model pack (:mod:`.packs`; the record's ``model`` entry says where),
so a record is the commit point of a partition: a torn record at the end of a journal (a
process killed while writing) fails its checksum and is ignored.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from .files import io_error, sync_and_close
from .packs import ModelPack

MAGIC = b"HPTJ"
HEADER = struct.Struct("<4sII")


class Journal:
    """Append-only log of finished partitions for one writing process, and the model pack its
    models go to (``models``, default: ``models/`` beside ``folder``)."""

    def __init__(self, folder: Path, sync_seconds: float = 2.0, models: Path | None = None) -> None:
        host = socket.gethostname().split(".")[0]
        self.path = folder / f"{host}-{os.getpid()}-{secrets.token_hex(3)}.log"
        self.sync_seconds = sync_seconds
        self.pack = ModelPack(Path(folder).parent / "models" if models is None else models)
        self._fd: int | None = None
        self._last_sync = time.monotonic()
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any], model: bytes | None = None) -> None:
        """Append ``record``; with ``model``, the model first, to the pack, and the record
        with its place (``model``: pack, offset, size)."""
        if model is not None:
            record = {**record, "model": self.pack.append(model).record()}
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
                self.pack.sync()  # the models before the records that point to them
                os.fsync(self._fd)
                self._last_sync = now
        except OSError as exc:
            raise io_error("append to", self.path, exc) from None

    def close(self) -> None:
        """Flush to disk and close (the pack first); safe to call again, or from another
        thread."""
        self.pack.close()
        fd, self._fd = self._fd, None
        sync_and_close(fd)


def read_journal(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Valid records of one journal, and how many bytes at its end were torn or damaged."""
    records: list[dict[str, Any]] = []
    scan = scan_journal(path)
    while True:
        try:
            records.append(next(scan))
        except StopIteration as end:
            return records, end.value


#: Bytes read from a journal at a time: a scan's memory does not grow with the journal.
READ_BLOCK = 8 << 20


def scan_journal(
    path: Path, parse: Callable[[bytes], bool] | None = None
) -> Generator[dict[str, Any], None, int]:
    """The valid records of one journal in order, read a block at a time; returns (as the
    generator's value) how many bytes at its end were torn or damaged. ``parse``: given a
    valid frame's JSON bytes, whether to parse and yield it (a search for one partition skips
    the others unparsed)."""
    with open(path, "rb") as journal:
        data = b""
        consumed = 0  # bytes of the file before ``data``
        ended = False
        while True:
            offset = 0
            while offset + HEADER.size <= len(data):
                magic, length, crc = HEADER.unpack_from(data, offset)
                start = offset + HEADER.size
                if magic != MAGIC:
                    return _rest(journal, consumed + offset)
                if start + length > len(data):
                    break  # the frame continues in the next block
                payload = data[start : start + length]
                if zlib.crc32(payload) != crc:
                    return _rest(journal, consumed + offset)
                if parse is not None and not parse(payload):
                    offset = start + length
                    continue
                try:
                    record = json.loads(payload)
                except ValueError:
                    return _rest(journal, consumed + offset)
                yield record
                offset = start + length
            if ended:
                return len(data) - offset
            consumed += offset
            more = journal.read(max(READ_BLOCK, HEADER.size + _wanted(data, offset)))
            ended = not more
            data = data[offset:] + more


def _wanted(data: bytes, offset: int) -> int:
    """The payload length of the frame starting at ``offset`` (0 when its header is cut)."""
    if offset + HEADER.size > len(data):
        return 0
    return HEADER.unpack_from(data, offset)[1]


def _rest(journal: Any, valid: int) -> int:
    """Bytes of the journal after its ``valid`` first bytes."""
    return os.fstat(journal.fileno()).st_size - valid
