"""The one per-process cache (hpctune.kept): what workers keep between tasks."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pytest
from helpers import synthetic, synthetic_spec, write_spec

import hpctune as api
from hpctune.kept import Kept


def test_the_most_recently_used_are_kept_and_what_goes_is_closed():
    closed = []
    kept = Kept(limit=2, close=closed.append)
    built = []

    def build(name):
        built.append(name)
        return name.upper()

    assert kept.get("a", lambda: build("a")) == "A"
    assert kept.get("b", lambda: build("b")) == "B"
    assert kept.get("a", lambda: build("a")) == "A"  # kept: not built again, now the newest
    assert kept.get("c", lambda: build("c")) == "C"  # b, the least recently used, goes
    assert built == ["a", "b", "c"] and closed == ["B"] and len(kept) == 2
    kept.clear()
    assert sorted(closed) == ["A", "B", "C"] and len(kept) == 0


def test_two_threads_building_one_key_keep_one_value_and_close_the_other():
    closed = []
    kept = Kept(close=closed.append)
    both_building = threading.Barrier(2)
    results = []

    def build():
        value = object()
        both_building.wait(timeout=10)  # both threads are inside build() at once
        return value

    threads = [
        threading.Thread(target=lambda: results.append(kept.get("k", build))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 2 and results[0] is results[1], "both get the value kept"
    assert len(closed) == 1 and closed[0] is not results[0], "the other one is closed"


def test_serial_values_are_built_one_at_a_time():
    """For libraries that are not thread-safe (netCDF-C opening files): never two builds at
    once, whatever the keys."""
    kept = Kept(serial=True)
    inside = []
    most = []

    def build(key):
        inside.append(key)
        most.append(len(inside))
        time.sleep(0.02)
        inside.remove(key)
        return key

    threads = [threading.Thread(target=kept.get, args=(k, lambda k=k: build(k))) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(kept) == 6 and max(most) == 1


def _open_here(path) -> bool:
    """Whether this process holds ``path`` open."""
    target = os.path.realpath(path)
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                return True
    return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc (Linux)")
def test_a_run_on_worker_threads_leaves_no_file_open_in_the_callers_process(tmp_path):
    # Files a run's threads kept open in the caller's process made netCDF-C refuse a later
    # open of another file there ("NetCDF: HDF error") and crashed a process that read
    # results.nc after such runs.
    synthetic(cells=3, steps=120).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", cluster__processes=False, cluster__workers=2)
    job = write_spec(tmp_path, spec)
    kept = Kept(close=lambda value: value.close())
    kept.get("x", lambda: open(tmp_path / "cells.nc", "rb"))  # noqa: SIM115 - kept open
    assert api.run(job).ok == 3
    assert not _open_here(tmp_path / "cells.nc")
    assert not any(_open_here(p) for p in (tmp_path / "out").rglob("*") if p.is_file())
