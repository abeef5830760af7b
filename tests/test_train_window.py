"""``data.train``: the time window trained on; and the refusal of a test period or a window
that holds no step of the data (exit 2, one line, nothing written)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api
from hpctune.errors import SpecError
from hpctune.reporting.page import page_context, render_index
from hpctune.search.partition import select_rows
from hpctune.spec import from_mapping


def valid_steps(ds: xr.Dataset, names: list[str]) -> xr.DataArray:
    """Per cell, how many steps have every variable of ``names`` finite."""
    finite = np.isfinite(ds[names[0]])
    for name in names[1:]:
        finite &= np.isfinite(ds[name])
    return finite.sum("time")


def test_the_window_trains_on_exactly_its_steps_of_the_real_data(real_data, tmp_path, capsys):
    spec = {
        "name": "window",
        "data": {
            "paths": str(real_data),
            "inputs": INPUTS,
            "target": "sig",
            "test": {"from": "2016-01-01"},
            "train": {"from": "2010-01-01", "until": "2012-12-31"},
        },
        "search": {
            "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.linear_model.Ridge"],
            "params": {"ridge__alpha": [0.1, 10.0]},
            "cv": {"kind": "kfold", "splits": 3},
        },
        "cluster": {"workers": 2, "processes": False},
        "output": str(tmp_path / "out"),
    }
    path = write_spec(tmp_path, spec)
    checked = hpctune(capsys, "validate", path, "--json")
    assert checked.code == 0, checked.err
    ds = xr.open_dataset(real_data)
    names = [*INPUTS, "sig"]
    # xarray's own reading of the window: a day alone as the end includes all of that day
    # (the data have steps at 00:30 and 01:00 of 2012-12-31).
    window = ds.sel(time=slice("2010-01-01", "2012-12-31"))
    assert window.time.values[-1] == np.datetime64("2012-12-31T01:00")
    assert f'"train_steps": {window.sizes["time"]}' in checked.out
    results = api.run(path).results
    assert list(results.status.values) == ["ok"] * 5, list(results.reason.values)
    assert list(results.n_train.values) == list(valid_steps(window, names).values)
    # The test period is data.test's alone, outside the window as it is.
    test = ds.sel(time=slice("2016-01-01", None))
    assert list(results.n_test.values) == list(valid_steps(test, names).values)
    assert np.isfinite(results.test_r2.values).all()
    context = page_context(api.load_spec(path), results, {}, [], [], generated="now")
    assert "; trained on 2010-01-01 .. 2012-12-31" in render_index(context)


def test_a_window_with_a_time_of_day_ends_at_that_instant():
    times = np.array(
        ["2010-01-01T00:00", "2010-01-01T12:00", "2010-01-01T12:30", "2010-01-02T00:00"],
        dtype="datetime64[ns]",
    )
    x, y = np.ones((4, 1)), np.arange(4.0)
    base = synthetic_spec("cells.nc")
    for until, expected in [("2010-01-01T12:00", [0.0, 1.0]), ("2010-01-01", [0.0, 1.0, 2.0])]:
        job = from_mapping({**base, "data": {**base["data"], "train": {"until": until}}})
        rows = select_rows(x, y, times, None, job.data.train)
        assert list(rows.y_train) == expected, until
    job = from_mapping({**base, "data": {**base["data"], "train": {"from": "2010-01-01T12:00"}}})
    rows = select_rows(x, y, times, np.datetime64("2010-01-02", "ns"), job.data.train)
    assert list(rows.y_train) == [1.0, 2.0] and list(rows.y_test) == [3.0]


def test_an_unset_window_leaves_the_fingerprint_of_existing_specs():
    base = synthetic_spec("cells.nc")
    job = from_mapping(base)
    assert "train" not in job.result_defining()["data"]
    windowed = from_mapping({**base, "data": {**base["data"], "train": {"from": "2010-02-01"}}})
    assert windowed.fingerprint() != job.fingerprint()
    again = from_mapping(windowed.to_dict())
    assert again.data.train == windowed.data.train


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ({}, "data.train: give from, until or both"),
        (
            {"from": "2011-01-01", "until": "2010-12-31"},
            "data.train: from 2011-01-01 is not before",
        ),
        ({"until": "someday"}, "data.train.until: must be a date such as 2016-01-01"),
        ({"form": "2010-01-01"}, "data.train.form: unknown key (allowed: from, until)"),
    ],
)
def test_a_malformed_window_is_refused(train, expected):
    base = synthetic_spec("cells.nc")
    with pytest.raises(SpecError) as info:
        from_mapping({**base, "data": {**base["data"], "train": train}})
    assert expected in str(info.value)


@pytest.fixture
def folder(tmp_path):
    synthetic(steps=240).to_netcdf(tmp_path / "cells.nc")  # 2010-01-01 .. 2010-04-30 12:00
    return tmp_path


def snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


EMPTY_PERIODS = {
    "a test period after the data": (
        {"data__test": {"from": "2011-01-01"}},
        "data.test.from: 2011-01-01 is after the data's last time 2010-04-30 12:00: "
        "the test period holds no steps",
    ),
    "a test period holding every step": (
        {"data__test": {"from": "2009-06-01"}},
        "data.test.from: 2009-06-01 is at or before the data's first time 2010-01-01: "
        "no training steps remain",
    ),
    "a window after the data": (
        {"data__train": {"from": "2012-01-01"}},
        "data.train: 2012-01-01 .. (end) holds no time step of the data "
        "(2010-01-01 .. 2010-04-30 12:00)",
    ),
    "a window before the data": (
        {"data__train": {"from": "2009-01-01", "until": "2009-12-31"}},
        "data.train: 2009-01-01 .. 2009-12-31 holds no time step of the data",
    ),
    "a window inside the test period": (
        {"data__train": {"from": "2010-04-01"}, "data__test": {"from": "2010-03-01"}},
        "data.train: 2010-04-01 .. (end) holds no time step of the data "
        "(2010-01-01 .. 2010-04-30 12:00) before data.test.from 2010-03-01",
    ),
}


@pytest.mark.parametrize("case", sorted(EMPTY_PERIODS))
def test_a_period_without_steps_exits_2_with_one_line(case, folder, capsys):
    changes, expected = EMPTY_PERIODS[case]
    path = write_spec(folder, synthetic_spec(folder / "cells.nc", **changes))
    before = snapshot(folder)
    for command in ("validate", "run"):
        result = hpctune(capsys, command, path)
        assert result.code == 2, (case, command, result)
        lines = result.err.strip().splitlines()
        assert lines == [f"hpctune: error: {expected}"] or (
            len(lines) == 1 and lines[0].startswith(f"hpctune: error: {expected}")
        ), lines
    assert snapshot(folder) == before, "a refused spec wrote files"


def test_a_window_needs_dates_on_the_time_axis(folder, capsys):
    ds = synthetic(steps=240)
    ds = ds.assign_coords(time=np.arange(240))
    ds.to_netcdf(folder / "steps.nc")
    spec = synthetic_spec(folder / "steps.nc", data__train={"from": "2010-01-01"})
    result = hpctune(capsys, "validate", write_spec(folder, spec))
    assert result.code == 2
    assert (
        result.err.strip()
        == "hpctune: error: data.train: the time coordinate 'time' holds no dates"
    )


@pytest.mark.full  # starts a process that imports scikit-learn and dask-ml
def test_a_search_in_its_own_process_keeps_the_window():
    """With ``search.timeout`` each search runs in a child process: the window goes with it."""
    from hpctune.search.sandbox import SearchProcess

    ds = synthetic(cells=1, steps=240)
    x = np.stack([ds[name].values[0] for name in ("x1", "x2", "x3")], axis=-1)
    y, times = ds.y.values[0], ds.time.values
    base = synthetic_spec("cells.nc", search__timeout=60)
    job = from_mapping({**base, "data": {**base["data"], "train": {"until": "2010-02-28"}}})
    expected = int((np.isfinite(y) & (times < np.datetime64("2010-03-01"))).sum())
    searcher = SearchProcess(job.search, None, 60, job.data.train)
    try:
        result = searcher.run(0, x, y, times)
    finally:
        searcher.close()
    assert result.status == "ok", result.reason
    assert result.n_train == expected < int(np.isfinite(y).sum())


def test_the_real_data_ending_before_the_test_period_is_refused(real_data, tmp_path, capsys):
    spec = {
        "name": "late",
        "data": {
            "paths": str(real_data),
            "inputs": INPUTS,
            "target": "sig",
            "test": {"from": "2021-01-01"},
        },
        "search": {"estimator": ["sklearn.linear_model.Ridge"], "params": {"alpha": [1.0]}},
        "output": str(tmp_path / "out"),
    }
    path = write_spec(tmp_path, spec)
    for command in ("validate", "run"):
        result = hpctune(capsys, command, path)
        assert result.code == 2
        assert result.err == (
            "hpctune: error: data.test.from: 2021-01-01 is after the data's last time "
            "2020-01-01 01:00: the test period holds no steps\n"
        )
    assert not (tmp_path / "out").exists()
