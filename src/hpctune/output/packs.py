"""Model packs: the models of a run in few container files, not one file per partition.

Each writing process appends the models it computes to a pack of its own beside its journal,
``models/<host>-<pid>-<token>.pack``, and starts a new pack once one holds :data:`PACK_BYTES`.
A model is one frame, ``MAGIC, length, crc32, skops bytes``, written before the partition's
journal record, which carries where it is (:class:`ModelLocation`: the pack, the offset of the
skops bytes in it, their length). The record stays the commit point of a partition: a frame
whose write was cut (a process killed, a full disk) has no record and is never read, and the
partition is computed again, into a new pack of the new process; a frame is never rewritten.
So a million partitions make a few packs per worker (and a requeue a few more), and loading a
model is one ``pread`` of its bytes.

Output folders written before packs hold ``models/NNN.skops``, one file per partition: their
records carry no location, and their models are read from those files
(:func:`location_of`), whole (``size`` -1).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import struct
import sys
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..data.partitions import model_file_name
from ..errors import ModelError
from .files import io_error, sync_and_close

MAGIC = b"HPTM"
HEADER = struct.Struct("<4sQI")
"""A frame's header: magic, length of the skops bytes, their crc32."""

PACK_BYTES = 1 << 30
"""A pack is closed, and the next model starts a new one, once it holds this many bytes."""

SUFFIX = ".pack"
WHOLE = -1
"""``size`` of a model that is a whole file (a ``.skops`` file of an older output folder)."""


@dataclass(frozen=True)
class ModelLocation:
    """Where one partition's model is: ``file`` in ``models/``, its skops bytes at ``offset``,
    ``size`` bytes long (:data:`WHOLE`: the whole file)."""

    file: str
    offset: int
    size: int

    def record(self) -> dict[str, Any]:
        """The form a journal record carries (its ``model`` entry)."""
        return {"pack": self.file, "offset": self.offset, "size": self.size}

    @property
    def relative(self) -> str:
        """The file relative to the output folder, as results.nc's ``model_file`` holds it."""
        return f"models/{self.file}"

    def __str__(self) -> str:
        if self.size == WHOLE:
            return self.relative
        return f"{self.relative} (bytes {self.offset} to {self.offset + self.size})"


def location_of(record: dict[str, Any], partitions: int) -> ModelLocation | None:
    """The model location of a journal record: its ``model`` entry, or for an ``ok`` record
    of an older output folder its ``.skops`` file; None when the partition has no model."""
    if record.get("status") != "ok":
        return None
    entry = record.get("model")
    if entry is None:
        return ModelLocation(model_file_name(int(record["index"]), partitions), 0, WHOLE)
    return ModelLocation(str(entry["pack"]), int(entry["offset"]), int(entry["size"]))


# --------------------------------------------------------------------------- writing


class ModelPack:
    """The pack a writing process appends its models to (opened at its first model, a new
    one after :data:`PACK_BYTES` or after a write that failed). Threads of the process share
    it; a forked child that inherits it opens a pack of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path: Path | None = None
        self._fd: int | None = None
        self._pid = 0
        self._size = 0
        self._lock = threading.Lock()

    def append(self, model: bytes) -> ModelLocation:
        """Append one model; returns where it is, once the write has returned."""
        frame_header = HEADER.pack(MAGIC, len(model), zlib.crc32(model))
        with self._lock:
            if self._fd is None or self._pid != os.getpid() or self._size >= PACK_BYTES:
                self._open()
            assert self._fd is not None and self.path is not None
            start = self._size
            try:
                _write_all(self._fd, frame_header)
                _write_all(self._fd, model)
            except OSError as exc:
                path = self.path
                self._close()  # the torn frame stays unread; the next model opens a new pack
                raise io_error("write", path, exc) from None
            self._size = start + HEADER.size + len(model)
            return ModelLocation(self.path.name, start + HEADER.size, len(model))

    def _open(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            self._close()
        self._fd = None  # a forked child's copy of its parent's descriptor is left alone
        host = socket.gethostname().split(".")[0]
        self.path = self.folder / f"{host}-{os.getpid()}-{secrets.token_hex(3)}{SUFFIX}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise io_error("create", self.path, exc) from None
        self._pid = os.getpid()
        self._size = 0

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        sync_and_close(fd)

    def sync(self) -> None:
        """Flush the models written so far to disk (the journal does, before it flushes its
        records: :meth:`hpctune.output.journal.Journal.append`)."""
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)

    def close(self) -> None:
        """Flush to disk and close; safe to call again."""
        with self._lock:
            if self._pid == os.getpid():
                self._close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.ENOSPC, "short write")
        view = view[written:]


# --------------------------------------------------------------------------- reading


def read_model(models: Path, location: ModelLocation) -> bytes:
    """The skops bytes at ``location`` in the folder ``models``, checked against their frame
    (magic, length, crc32); a :class:`ModelError` naming the place when they are missing or
    damaged."""
    path = Path(models) / location.file
    try:
        with open(path, "rb") as handle:
            if location.size == WHOLE:
                return handle.read()
            start = location.offset - HEADER.size
            frame = os.pread(handle.fileno(), HEADER.size + location.size, start)
    except FileNotFoundError:
        raise ModelError(f"no model file {path}") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(frame) == HEADER.size + location.size and start >= 0:
        magic, length, crc = HEADER.unpack_from(frame)
        data = frame[HEADER.size :]
        if magic == MAGIC and length == location.size and zlib.crc32(data) == crc:
            return data
    raise ModelError(
        f"the model at {path} bytes {location.offset}-{location.offset + location.size} is "
        "damaged or cut short (the pack was truncated or overwritten)"
    )


@dataclass(frozen=True)
class ModelIndex:
    """Where the model of every partition is: small arrays, sent to each predict worker."""

    files: tuple[str, ...]
    """The files of ``models/`` that hold models."""
    file: np.ndarray
    """Per partition, its file's position in :attr:`files` (-1: no model)."""
    offset: np.ndarray
    size: np.ndarray

    @classmethod
    def of_records(cls, pairs: Iterable[tuple[int, dict[str, Any]]], partitions: int) -> ModelIndex:
        """The index of ``(index, record)`` pairs (each partition's winning record)."""
        names: dict[str, int] = {}
        file = np.full(partitions, -1, dtype=np.int32)
        offset = np.zeros(partitions, dtype=np.int64)
        size = np.zeros(partitions, dtype=np.int64)
        for index, record in pairs:
            where = location_of(record, partitions) if 0 <= index < partitions else None
            if where is None:
                continue
            file[index] = names.setdefault(where.file, len(names))
            offset[index], size[index] = where.offset, where.size
        return cls(tuple(names), file, offset, size)

    def __len__(self) -> int:
        """Partitions with a model."""
        return int((self.file >= 0).sum())

    def has(self, index: int) -> bool:
        """Whether partition ``index`` has a model."""
        return bool(self.file[index] >= 0)

    def location(self, index: int) -> ModelLocation | None:
        """Where partition ``index``'s model is; None when it has none."""
        if not self.has(index):
            return None
        return ModelLocation(
            self.files[int(self.file[index])], int(self.offset[index]), int(self.size[index])
        )


class ModelColumns:
    """results.nc's ``model_file``, ``model_offset`` and ``model_size``, filled record by
    record (:func:`hpctune.output.dataset.results_dataset`)."""

    LONG_NAMES: ClassVar[dict[str, str]] = {
        "model_file": "file of the best model, relative to the output folder (a model pack)",
        "model_offset": "byte offset of the best model (skops format) in model_file",
        "model_size": "bytes of the best model in model_file (-1: the whole file)",
    }

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.file = np.full(partitions, "", dtype=object)
        self.offset = np.zeros(partitions, dtype=np.int64)
        self.size = np.zeros(partitions, dtype=np.int64)

    def fill(self, index: int, record: dict[str, Any]) -> None:
        """The columns of partition ``index`` from its winning record."""
        where = location_of(record, self.partitions)
        if where is None:
            self.file[index], self.offset[index], self.size[index] = "", 0, 0
        else:
            self.file[index] = sys.intern(where.relative)
            self.offset[index], self.size[index] = where.offset, where.size

    def variables(self) -> dict[str, np.ndarray]:
        """The three columns by name, in results.nc's order."""
        return {"model_file": self.file, "model_offset": self.offset, "model_size": self.size}
