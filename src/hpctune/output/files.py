"""Files of the output folder written safely: atomically, with readable errors, and under
the one advisory file lock (a run's folder lock and the lock of ``jobs.json``)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputError


def io_error(action: str, path: Path, exc: OSError) -> OutputError:
    """``cannot <action> <path>: <why>``, the why in words (full disk, quota, permissions)."""
    if exc.errno == errno.ENOSPC:
        why = "no space left on the device"
    elif exc.errno == errno.EDQUOT:
        why = "disk quota exceeded"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied (read-only or not yours)"
    else:
        why = exc.strerror or str(exc)
    return OutputError(f"cannot {action} {path}: {why}")


def sync_and_close(fd: int | None) -> None:
    """Flush ``fd`` to disk and close it, quietly: on the way out (a journal's, a pack's last
    write) an error has nobody to tell, and what was not flushed is what a record's checksum
    guards against."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.fsync(fd)
        with contextlib.suppress(OSError):
            os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise io_error("write", path, exc) from None


@dataclass
class FileLock:
    """An advisory lock (``flock``) on a file, held for the length of a run; :func:`take_lock`
    takes one. Its file is removed when the last holder releases it."""

    path: Path
    fd: int

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Remove the file if no other process holds it, then unlock it. The file is unlinked
        only under an exclusive lock (a shared one is converted first, which fails while
        another holds it), and :func:`take_lock` checks that the lock it got is on the file the
        path names: a process that opened the file before it was removed locks it again."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _names(self.path, self.fd):
                self.path.unlink()
        except OSError:  # another holder, or no right to remove it: the file stays
            pass
        finally:
            os.close(self.fd)  # the lock goes with the last descriptor


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` names the file open as ``fd``."""
    try:
        here = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def take_lock(
    path: Path, exclusive: bool = True, wait: bool = False, patience: float = 0.2
) -> FileLock | None:
    """Lock the file ``path`` (created if missing), exclusively or shared; without ``wait``,
    None when another process holds it, ``patience`` seconds on (the moment a shared lock's
    last holder takes it exclusively, to remove it, is not a conflict). The lock is on the file
    ``path`` names when this returns, never on one removed in between
    (:meth:`FileLock.release`). OSError when the file cannot be opened."""
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    tries = max(1, round(patience / 0.01))
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            for attempt in range(tries):
                try:
                    fcntl.flock(fd, mode if wait else mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == tries - 1:
                        os.close(fd)
                        return None
                    time.sleep(0.01)
            if _names(path, fd):
                return FileLock(path, fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed by its last holder since it was opened: lock the file now there
