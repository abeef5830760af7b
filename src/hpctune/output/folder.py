"""The output folder: per-partition results written as they finish, resume, and results.nc.

Layout of ``<output>/``::

    hpctune.json     manifest: spec fingerprint, the spec, partition count, versions
    parts/*.log      append-only journals, one per writing process
    models/*.pack    append-only model packs, one or a few per writing process (:mod:`.packs`)
    results.nc       all partitions, written at the end of a run (or by ``merge``)
    cv_results.nc    every candidate's scores per partition, written with results.nc

A journal record is ``MAGIC, length, crc32, JSON``. It is appended with one ``write`` after the
partition's model is appended to its process's pack (the record says where), so a record is the
commit point of a partition: a torn record at the end of a journal (a process killed while
writing) fails its checksum and is ignored, and a model without a record is never read (its
partition is computed again). Many partitions share one journal and one pack, so a million
partitions do not make a million files, and reading the state back is a sequential scan.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError, UsageError, holds_other_spec
from ..spec import Job
from .dataset import results_dataset
from .files import FileLock, io_error, take_lock, write_atomic
from .latest import LatestRecords
from .lookup import find_model
from .packs import ModelIndex, ModelLocation, read_model
from .record import FINISHED, TEST_METRICS
from .surface import CV_RESULTS, surface_dataset, write_surface
from .versions import versions

MANIFEST = "hpctune.json"
RESULTS = "results.nc"


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

    def latest(self) -> LatestRecords:
        """Which journal record of each partition counts, and its status, from one scan of
        the journals that keeps no record (:mod:`.latest`)."""
        return LatestRecords.of_folder(self.parts)

    def records(self) -> dict[int, dict[str, Any]]:
        """The latest valid record of each partition, over all journals, as one dict (for a
        few partitions; :meth:`latest` reads any number)."""
        return dict(self.latest().records())

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
            raise io_error("create", self.root, exc) from None
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
        for path in (self.results_path, self.root / CV_RESULTS, self.manifest_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def lock(self, part: tuple[int, int] | None = None) -> list[FileLock]:
        """Lock the folder: a whole run exclusively, a slice shared (plus its own slice lock)."""
        locks: list[FileLock] = []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise io_error("create", self.root, exc) from None
        try:
            locks.append(self._flock(self.root / ".lock", exclusive=part is None))
            if part is not None:
                locks.append(self._flock(self.root / f".lock-slice-{part[0]}-of-{part[1]}", True))
        except BaseException:
            for held in locks:
                held.release()
            raise
        return locks

    def _flock(self, path: Path, exclusive: bool) -> FileLock:
        try:
            held = take_lock(path, exclusive)
        except OSError as exc:
            raise io_error("lock", path, exc) from None
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

    def partitions(self) -> int:
        """The partition count of the results (0 when there are none)."""
        return int((self.manifest() or {}).get("partitions", 0))

    def model_location(self, index: int) -> ModelLocation | None:
        """Where the model of partition ``index`` is; None until it finished ``ok``
        (:func:`hpctune.output.lookup.find_model`: results.nc, else the journals)."""
        manifest = self.manifest() or {}
        size = int(manifest.get("partitions", index + 1))
        return find_model(self.root, index, size, manifest.get("fingerprint"))

    def model_index(self) -> ModelIndex:
        """Where the model of every partition is, from one read of the winning records."""
        return ModelIndex.of_records(self.latest().records(), self.partitions())

    def read_model(self, location: ModelLocation) -> bytes:
        """The skops bytes of the model at ``location``, checked against their frame."""
        return read_model(self.models, location)

    # ------------------------------------------------------------------ results.nc

    def write_results(
        self,
        job: Job,
        plan: Any,
        coords: dict[str, tuple[np.ndarray, dict]],
        records: dict[int, dict[str, Any]] | None = None,
        test_metrics: Sequence[str] = TEST_METRICS,
        candidates: list[dict[str, Any]] | None = None,
        space_sizes: dict[str, int] | None = None,
        multi_output: str | None = None,
    ) -> Any:
        """Merge every partition's record into results.nc (atomically) and return the Dataset
        (on the grid ``space_sizes`` for a stacked ``data.space``: :mod:`.grid`); with the
        search's ``candidates``, write every candidate's scores to cv_results.nc."""
        latest = self.latest() if records is None else None
        if candidates is not None:
            rows = records if latest is None else latest.records()
            write_surface(surface_dataset(job, plan, coords, rows, candidates), self.root)
        rows = records if latest is None else latest.records()
        ds = results_dataset(job, plan, coords, rows, test_metrics, space_sizes, multi_output)
        tmp = self.root / f".{RESULTS}.{os.getpid()}.tmp"
        try:
            ds.to_netcdf(tmp, engine="netcdf4")
            os.replace(tmp, self.results_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise io_error("write", self.results_path, exc) from None
        return ds


def _changed_keys(old: Any, new: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
    elif old != new:
        yield prefix.rstrip(".")
