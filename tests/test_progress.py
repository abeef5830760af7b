"""Progress: a live bar on a terminal, plain lines in a batch log, a summary table at the end."""

from __future__ import annotations

import importlib
import io

import numpy as np
import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec

import hpctune as api
from hpctune.execution.driver import RunSummary
from hpctune.progress import MIN_RATE_SECONDS, Counts, Progress, format_rate, summary_table
from hpctune.units import clock

progress_module = importlib.import_module("hpctune.progress")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def counts(**changes):
    values = {"total": 10, "ok": 2, "skipped": 1, "failed": 1, "resumed": 3}
    values.update(changes)
    return Counts(**values)


class Clock:
    """An injected clock for hpctune.progress: it moves only when the test moves it."""

    def __init__(self):
        self.start = self.now = 5000.0

    def monotonic(self):
        return self.now


@pytest.fixture
def injected(monkeypatch):
    injected = Clock()
    monkeypatch.setattr(progress_module, "time", injected)
    return injected


def test_batch_log_lines_are_plain_and_steady(monkeypatch, injected):
    monkeypatch.delenv("HPCTUNE_PROGRESS_INTERVAL", raising=False)
    log = io.StringIO()
    progress = Progress(stream=log)
    assert not progress.tty and progress.interval == 30.0
    state = counts()
    progress.update(state)
    injected.now += 29.9
    progress.update(state)  # within the interval: nothing
    injected.now += 0.1
    progress.update(state)
    progress.update(state, force=True)
    lines = log.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("progress [00:00]: 7/10 partitions (70%): ok 2, skipped 1, ")
    assert lines[1].startswith("progress [00:30]: ") and lines[2].startswith("progress [00:30]: ")
    assert "failed 1, resumed 3;" in lines[0] and "ETA" in lines[0]
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    progress.summary(_summary())
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("HPCTUNE_PROGRESS_INTERVAL", "5")
    assert Progress(stream=io.StringIO()).interval == 5.0
    monkeypatch.setenv("HPCTUNE_PROGRESS_INTERVAL", "soon")
    assert Progress(stream=io.StringIO()).interval == 30.0
    assert Progress(stream=Terminal()).interval == 0.2


def test_terminal_bar_redraws_in_place(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "200")
    screen = Terminal()
    progress = Progress(stream=screen, interval=0)
    progress.update(counts())
    progress.update(counts(ok=3))
    text = screen.getvalue()
    assert text.count("\r[") == 2 and "\n" not in text
    assert "[" + "#" * 21 in text and "\x1b[K" in text
    assert "\x1b[31mfailed 1\x1b[0m" in text
    progress.message("done")
    assert screen.getvalue().endswith("\ndone\n")

    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    Progress(stream=plain, interval=0).update(counts())
    assert "\x1b[31m" not in plain.getvalue()


def test_rate_and_eta_count_from_the_first_update(injected):
    progress = Progress(stream=io.StringIO(), interval=0)
    state = Counts(total=100, started=injected.now - 1000)  # e.g. a slow cluster start
    progress.update(state)
    state.ok = 10
    assert progress.rate(state) == 0.0, "no rate in the first second: it would be noise"
    injected.now += MIN_RATE_SECONDS * 0.99
    assert progress.rate(state) == 0.0
    injected.now = injected.start + 1.25
    assert progress.rate(state) == pytest.approx(10 / 1.25)
    assert progress.eta_seconds(state) == pytest.approx(90 / (10 / 1.25))
    assert state.rate() == pytest.approx(10 / 1001.25), "the start-of-run clock: 100 x slower"
    assert Progress(enabled=False).eta_seconds(Counts(total=0)) == 0.0


def test_formats():
    assert clock(65) == "01:05" and clock(3725) == "1:02:05"
    assert clock(float("inf")) == "--:--"
    assert format_rate(2.5) == "2.5/s" and format_rate(0.05) == "3.0/min"
    assert format_rate(0.0001) == "0.4/h" and format_rate(0) == "-"


def _summary(**changes):
    results = xr.Dataset(
        {
            "status": ("space", np.array(["ok", "ok", "failed", "failed", "skipped"], object)),
            "reason": ("space", np.array(["", "", "MemoryError: x", "MemoryError: x", "few"])),
            "fit_seconds": ("space", np.array([1.0, 3.0, np.nan, np.nan, np.nan])),
        }
    )
    values = {
        "name": "demo",
        "output": "/scratch/demo",
        "total": 5,
        "ok": 2,
        "skipped": 1,
        "failed": 2,
        "resumed": 1,
        "seconds": 125.0,
        "cluster": "local cluster: 2 worker processes x 1 thread(s)",
        "granularity": "partition",
        "results": results,
    }
    values.update(changes)
    return RunSummary(**values)


def test_summary_table():
    table = summary_table(_summary())
    lines = table.splitlines()
    assert lines[0] == "demo: summary"
    assert "  ok             2   40.0%" in lines
    assert "  failed         2   40.0%" in lines
    assert "  total          5  (1 done by earlier runs)" in lines
    assert "  wall time  02:05 (1.9/min)" in lines
    assert "  fit time   mean 2.00 s, p95 2.90 s, max 3.00 s per partition; " in table
    assert "  failure    2 x MemoryError: x" in lines
    assert "  output     /scratch/demo" in lines
    stopped = summary_table(_summary(stopped_by="SIGUSR1", results=None))
    assert "stopped    by SIGUSR1; run the same command to resume" in stopped
    assert "fit time" not in stopped


@pytest.mark.parametrize("granularity", ["partition", "fit"])
def test_a_run_reports_progress_and_a_summary(tmp_path, dask_client, granularity):
    synthetic(cells=6, steps=200).to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc"))
    log = io.StringIO()
    progress = Progress(stream=log, interval=0)
    overrides = [f"cluster.granularity={granularity}"]
    summary = api.run(job, overrides, client=dask_client, progress=progress)
    assert summary.granularity == granularity
    progress.summary(summary)
    text = log.getvalue()
    assert "progress [" in text and "6/6 partitions (100%): ok 6" in text
    assert "synthetic: summary" in text and "  ok             6  100.0%" in text
    assert "\r" not in text and "\x1b" not in text
