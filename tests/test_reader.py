"""CellReader: whatever it reads at once, each request gets exactly its cells' series."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import synthetic, synthetic_spec, write_spec

import hpctune
from hpctune.data.inspect import check_data
from hpctune.data.reader import CellReader


def _reader(tmp_path, ds, **data) -> tuple[CellReader, list[tuple[int, int]]]:
    ds.to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc")
    spec["data"].update(data)
    job = hpctune.load_spec(write_spec(tmp_path, spec))
    reader = CellReader(job.data, check_data(job))
    reads: list[tuple[int, int]] = []
    exact = reader._read

    def counting(cells):
        reads.append((int(cells.min()), int(cells.max())))
        return exact(cells)

    reader._read = counting
    return reader, reads


def _expected(ds, flat: int, space: list[str]) -> np.ndarray:
    stacked = ds.stack(cell=space).transpose("cell", "time")
    return np.stack([stacked[v].values[flat] for v in ("x1", "x2", "x3")], axis=-1)


def test_neighbouring_single_cells_are_read_once_per_window(tmp_path):
    ds = synthetic(cells=40, steps=100)
    reader, reads = _reader(tmp_path, ds, chunk=16)
    assert reader.window_cells == 16
    for cell in [0, 2, 1, 15, 16, 39, 17]:
        block = reader.read(np.array([cell]))
        np.testing.assert_array_equal(block.x[0], _expected(ds, cell, ["space"]))
        np.testing.assert_array_equal(block.y[0], ds.y.values[cell])
    assert reads == [(0, 15), (16, 31), (32, 39), (16, 31)]


def test_requests_of_a_window_or_more_are_read_as_they_are(tmp_path):
    ds = synthetic(cells=40, steps=100)
    reader, reads = _reader(tmp_path, ds, chunk=8)
    cells = np.array([30, 3, 9, 4, 5, 6, 7, 8])
    block = reader.read(cells)
    assert reads == [(3, 30)]
    for row, cell in enumerate(cells):
        np.testing.assert_array_equal(block.y[row], ds.y.values[cell])
    reader.read(np.array([7, 9]))  # crosses the window boundary at 8
    assert reads[-1] == (7, 9)


def test_windows_keep_to_one_row_of_a_grid(tmp_path):
    ds = synthetic(grid=(3, 5), steps=60)
    reader, reads = _reader(tmp_path, ds, space=["lat", "lon"], chunk=4)
    for cell in range(15):
        block = reader.read(np.array([cell]))
        np.testing.assert_array_equal(block.x[0], _expected(ds, cell, ["lat", "lon"]))
    # rows of 5 cells: windows of 4 and the row's last cell, never a window across two rows
    assert reads == [(0, 3), (4, 4), (5, 8), (9, 9), (10, 13), (14, 14)]


@pytest.mark.parametrize("steps, expected", [(100, 16), (100_000, 5)])
def test_the_window_is_bounded_in_bytes(tmp_path, steps, expected):
    """Four float32 variables: 16 bytes a step; 8 MiB / (16 x 100,000) = 5 cells."""
    reader, _ = _reader(tmp_path, synthetic(cells=20, steps=steps), chunk=16)
    assert reader.window_cells == expected
