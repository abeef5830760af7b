"""The output folder: per-partition results written as they finish, resume, and results.nc.

Layout of ``<output>/``::

    hpctune.json     manifest: spec fingerprint, the spec, partition count, versions
    parts/*.log      append-only journals, one per writing process
    models/*.skops   one model file per partition that finished ``ok``
    results.nc       all partitions, written at the end of a run (or by ``merge``)

A journal record is ``MAGIC, length, crc32, JSON``. It is appended with one ``write`` after the
partition's model file is in place (written to a temporary name and renamed), so a record is the
commit point of a partition: a torn record at the end of a journal (a process killed while
writing) fails its checksum and is ignored, and a model file without a record is simply written
again. Many partitions share one journal, so a million partitions do not make a million result
files, and reading the state back is a sequential scan.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import secrets
import shutil
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputError, UsageError, holds_other_spec
from .search import TEST_METRICS, PartitionResult
from .spec import Job

MAGIC = b"HPTJ"
HEADER = struct.Struct("<4sII")
MANIFEST = "hpctune.json"
RESULTS = "results.nc"
FINISHED = ("ok", "skipped")


def _io_error(action: str, path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        why = "no space left on the device"
    elif exc.errno == errno.EDQUOT:
        why = "disk quota exceeded"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied (read-only or not yours)"
    else:
        why = exc.strerror or str(exc)
    return OutputError(f"cannot {action} {path}: {why}")


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
        raise _io_error("write", path, exc) from None


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
            raise _io_error("append to", self.path, exc) from None

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


@dataclass
class RunLock:
    """An advisory lock (``flock``) on a file, held for the length of a run; :func:`take_lock`
    takes one. Its file is removed when the last holder releases it."""

    path: Path
    fd: int

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
) -> RunLock | None:
    """Lock the file ``path`` (created if missing), exclusively or shared; without ``wait``,
    None when another process holds it, ``patience`` seconds on (the moment a shared lock's
    last holder takes it exclusively, to remove it, is not a conflict). The lock is on the file
    ``path`` names when this returns, never on one removed in between
    (:meth:`RunLock.release`). OSError when the file cannot be opened."""
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
                return RunLock(path, fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed by its last holder since it was opened: lock the file now there


class Store:
    """One output folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.parts = self.root / "parts"
        self.models = self.root / "models"
        self.results_path = self.root / RESULTS
        self.manifest_path = self.root / MANIFEST

    # ------------------------------------------------------------------ state

    def manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise OutputError(f"cannot read {self.manifest_path}: {exc}") from None

    def changed_keys(self, job: Job) -> list[str]:
        """The dotted keys that decide results (``search.params.svr__C``) in which ``job``
        differs from the spec whose results this folder holds; empty when it holds none, or
        results of the same spec."""
        manifest = self.manifest()
        if manifest is None or manifest.get("fingerprint") == job.fingerprint():
            return []
        old = manifest.get("result_defining", {})
        return sorted(_changed_keys(old, job.result_defining())) or ["(unknown)"]

    def check_compatible(self, job: Job) -> None:
        """Refuse results of another spec (exit 2), naming the keys that changed."""
        changed = self.changed_keys(job)
        if changed:
            raise UsageError(
                f"{holds_other_spec(self.root, changed)}; "
                "pass --restart to discard them, or choose another output"
            )

    def records(self) -> dict[int, dict[str, Any]]:
        """The latest valid record of each partition, over all journals."""
        found: dict[int, dict[str, Any]] = {}
        if not self.parts.is_dir():
            return found
        for path in sorted(self.parts.glob("*.log"), key=lambda p: p.stat().st_mtime_ns):
            records, _torn = read_journal(path)
            for record in records:
                index = int(record["index"])
                previous = found.get(index)
                # A finished result is never replaced by a later failure of the same partition.
                if (
                    previous is None
                    or record["status"] in FINISHED
                    or previous["status"] not in FINISHED
                ):
                    found[index] = record
        return found

    def finished(self) -> dict[int, dict[str, Any]]:
        """Partitions already ``ok`` or ``skipped``: a rerun does not compute them again."""
        return {i: r for i, r in self.records().items() if r["status"] in FINISHED}

    # ------------------------------------------------------------------ preparing a run

    def prepare(
        self, job: Job, partitions: int, restart: bool, info_summary: dict[str, Any]
    ) -> None:
        """Create the folder, discard old results on ``restart``, write the manifest."""
        if not restart:
            self.check_compatible(job)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if restart:
                self.clear()
            self.parts.mkdir(exist_ok=True)
            self.models.mkdir(exist_ok=True)
        except OSError as exc:
            raise _io_error("create", self.root, exc) from None
        manifest = {
            "name": job.name,
            "fingerprint": job.fingerprint(),
            "partitions": partitions,
            "partition_by": job.partition.by,
            "result_defining": job.result_defining(),
            "spec": job.to_dict(),
            "data": info_summary,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": versions(),
        }
        existing = self.manifest()
        if existing is not None and existing.get("fingerprint") == manifest["fingerprint"]:
            manifest["created"] = existing.get("created", manifest["created"])
        write_atomic(self.manifest_path, json.dumps(manifest, indent=2).encode())

    def clear(self) -> None:
        """Remove earlier results (journals, models, results.nc, report); nothing else."""
        for folder in (self.parts, self.models, self.root / "report"):
            if folder.is_dir():
                shutil.rmtree(folder)
        for path in (self.results_path, self.manifest_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def lock(self, part: tuple[int, int] | None = None) -> list[RunLock]:
        """Lock the folder: a whole run exclusively, a slice shared (plus its own slice lock)."""
        locks: list[RunLock] = []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _io_error("create", self.root, exc) from None
        try:
            locks.append(self._flock(self.root / ".lock", exclusive=part is None))
            if part is not None:
                locks.append(self._flock(self.root / f".lock-slice-{part[0]}-of-{part[1]}", True))
        except BaseException:
            for held in locks:
                held.release()
            raise
        return locks

    def _flock(self, path: Path, exclusive: bool) -> RunLock:
        try:
            held = take_lock(path, exclusive)
        except OSError as exc:
            raise _io_error("lock", path, exc) from None
        if held is None:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = path.read_text().strip()[:512]
            who = f" ({holder})" if holder else ""
            raise OutputError(
                f"another hpctune run is using {self.root}{who}; wait for it to end, "
                "or give this run another output"
            ) from None
        if exclusive:
            info = f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%H:%M:%S')}"
            with contextlib.suppress(OSError):
                os.ftruncate(held.fd, 0)
                os.pwrite(held.fd, info.encode(), 0)
        return held

    # ------------------------------------------------------------------ writing partitions

    def write_model(self, name: str, model: bytes) -> None:
        write_atomic(self.models / name, model)

    # ------------------------------------------------------------------ results.nc

    def write_results(
        self,
        job: Job,
        plan: Any,
        coords: dict[str, tuple[np.ndarray, dict]],
        records: dict[int, dict[str, Any]] | None = None,
    ) -> Any:
        """Merge every partition's record into results.nc (atomically) and return the Dataset."""
        records = self.records() if records is None else records
        ds = results_dataset(job, plan, coords, records)
        tmp = self.root / f".{RESULTS}.{os.getpid()}.tmp"
        try:
            ds.to_netcdf(tmp, engine="netcdf4")
            os.replace(tmp, self.results_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _io_error("write", self.results_path, exc) from None
        return ds


def _changed_keys(old: Any, new: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
    elif old != new:
        yield prefix.rstrip(".")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("hpctune", "dask", "distributed", "dask-ml", "scikit-learn", "xarray", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found


# --------------------------------------------------------------------------- results.nc


def param_kinds(job: Job) -> dict[str, str]:
    """``float`` for a parameter whose values are all numbers (or a distribution), else ``str``."""
    kinds = {}
    for name, values in job.search.params.items():
        numeric = isinstance(values, dict) or all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        kinds[name] = "float" if numeric else "str"
    return kinds


def results_dataset(
    job: Job, plan: Any, coords: dict[str, tuple[np.ndarray, dict]], records: dict[int, dict]
) -> Any:
    """One row per partition: dimension ``space`` (cells) or ``partition`` (groups)."""
    import xarray as xr

    size = plan.size
    dim = "partition" if plan.grouped else "space"
    results = [
        PartitionResult.from_record(records[i]) if i in records else None for i in range(size)
    ]

    def column(getter: Any, dtype: Any, missing: Any) -> np.ndarray:
        return np.array([missing if r is None else getter(r) for r in results], dtype=dtype)

    variables: dict[str, Any] = {
        "status": column(lambda r: r.status, object, "pending"),
        "reason": column(
            lambda r: r.reason,
            object,
            "not computed yet (the run stopped or this slice did not run)",
        ),
        "best_score": column(lambda r: r.best_score, np.float64, np.nan),
        "n_train": column(lambda r: r.n_train, np.int64, 0),
        "n_test": column(lambda r: r.n_test, np.int64, 0),
    }
    for name, kind in param_kinds(job).items():
        if kind == "float":
            variables[f"best_{name}"] = column(
                lambda r, n=name: float(r.best_params[n]) if n in r.best_params else np.nan,
                np.float64,
                np.nan,
            )
        else:
            variables[f"best_{name}"] = column(
                lambda r, n=name: str(r.best_params[n]) if n in r.best_params else "", object, ""
            )
    for scorer in job.search.scoring:
        variables[f"cv_{scorer}"] = column(
            lambda r, s=scorer: r.cv_scores.get(s, np.nan), np.float64, np.nan
        )
    if job.data.test is not None:
        for metric in TEST_METRICS:
            variables[f"test_{metric}"] = column(
                lambda r, m=metric: r.test_scores.get(m, np.nan), np.float64, np.nan
            )
    variables["fit_seconds"] = column(lambda r: r.fit_seconds, np.float64, np.nan)
    variables["node"] = column(lambda r: r.node, object, "")
    variables["model_file"] = column(
        lambda r: f"models/{plan.model_name(r.index)}" if r.status == "ok" else "", object, ""
    )
    ds = xr.Dataset({name: (dim, values) for name, values in variables.items()})
    if plan.grouped:
        ds = ds.assign_coords({dim: plan.labels, "n_cells": (dim, [m.size for m in plan.members])})
        ds[dim].attrs["long_name"] = f"value of {job.partition.by}"
    else:
        for name, (values, attrs) in coords.items():
            if name == "space":
                ds = ds.assign_coords(space=values)
            else:
                ds = ds.assign_coords({name: (dim, values)})
            ds[name].attrs.update(attrs)
    _describe_variables(ds, job)
    ds.attrs.update(
        {
            "title": f"hpctune results of {job.name}",
            "hpctune_name": job.name,
            "hpctune_fingerprint": job.fingerprint(),
            "hpctune_spec": json.dumps(job.to_dict()),
            "hpctune_version": versions()["hpctune"],
            "partition_by": job.partition.by,
            "space_dims": " ".join(job.data.space),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
    return ds


def _describe_variables(ds: Any, job: Job) -> None:
    notes = {
        "status": "ok, skipped, failed, or pending (not computed yet)",
        "reason": "why a partition was skipped or failed",
        "best_score": f"mean cross-validated {job.search.refit_metric} of the best candidate",
        "n_train": "valid rows used by the search (training period)",
        "n_test": "valid rows of the test period",
        "fit_seconds": "wall seconds of the search, refit included",
        "node": "host or scheduler node that computed the partition",
        "model_file": "best model, relative to the output folder (skops format)",
    }
    for name, text in notes.items():
        ds[name].attrs["long_name"] = text
    for name in ds.data_vars:
        if str(name).startswith("test_"):
            ds[name].attrs["long_name"] = f"{str(name)[5:]} of the best model on the test period"
        elif str(name).startswith("cv_"):
            ds[name].attrs["long_name"] = (
                f"mean cross-validated {str(name)[3:]} of the best candidate"
            )


def count_statuses(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    return counts
