"""A cell's model by its coordinates: ``hpctune.location`` finds the cell nearest to a place
(great-circle for latitude/longitude) and the partition that trained it; ``load_model(job,
lat=..., lon=...)`` loads that partition's model; a place outside the grid, an unknown
coordinate, or both a number and coordinates are refused with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import synthetic, synthetic_spec, write_spec

import hpctune
from hpctune.errors import UsageError
from hpctune.output.locate import locate


@pytest.fixture
def grid_job(tmp_path):
    """A 3 x 4 lat/lon grid (lat 50, 49.5, 49; lon 2 .. 3.5 by 0.5), run by cell."""
    synthetic(grid=(3, 4), steps=120).to_netcdf(tmp_path / "grid.nc")
    spec = synthetic_spec(tmp_path / "grid.nc", data__space=["lat", "lon"])
    return hpctune.load_spec(write_spec(tmp_path, spec))


def test_the_nearest_cell_and_its_partition_on_a_lat_lon_grid(grid_job):
    # lat 49.6 is nearest to 49.5 (row 1), lon 3.1 nearest to 3.0 (column 2): cell 1 * 4 + 2
    found = hpctune.location(grid_job, lat=49.6, lon=3.1)
    assert (found.cell, found.partition) == (6, 6)
    assert found.coords == {"lat": 49.5, "lon": 3.0}
    assert found.unit == "km"
    # 0.1 degree of latitude (11.12 km) and 0.1 of longitude at 49.55 N (7.21 km): 13.25 km
    assert found.distance == pytest.approx(13.25, abs=0.05)
    # on a cell exactly: that cell, no distance
    exact = hpctune.location(grid_job, lat=50.0, lon=2.0)
    assert (exact.partition, exact.distance) == (0, 0.0)


def test_a_place_outside_the_grid_or_an_unknown_coordinate_is_refused(grid_job):
    with pytest.raises(UsageError, match=r"no cell near lat=10, lon=3: the nearest .* km away"):
        locate(grid_job, {"lat": 10.0, "lon": 3.0})
    with pytest.raises(UsageError, match=r"latitude: no coordinate .*\(there: lat, lon\)"):
        locate(grid_job, {"latitude": 49.5, "lon": 3.0})
    with pytest.raises(UsageError, match="a partition number or coordinates"):
        locate(grid_job, {})


def test_a_grouped_run_gives_the_partition_of_the_cells_group(tmp_path):
    ds = synthetic(cells=6)
    ds["region"] = ("space", np.array([3, 1, 3, 2, 1, 2]))
    ds.to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", partition__by="region")
    job = hpctune.load_spec(write_spec(tmp_path, spec))
    # cells lie at latitude 40 + 0.25 i, longitude 5 + 0.25 i; partitions are the sorted
    # regions 1, 2, 3: cell 3 (region 2) is partition 1, cell 2 (region 3) partition 2
    assert hpctune.location(job, latitude=40.75, longitude=5.75).partition == 1
    assert hpctune.location(job, latitude=40.5, longitude=5.5).partition == 2


@pytest.mark.full
def test_load_model_by_coordinates_is_the_partitions_model(grid_job, dask_client):
    summary = hpctune.run(grid_job, client=dask_client)
    assert summary.ok == 12
    by_place = hpctune.load_model(grid_job, lat=49.0, lon=3.5)  # the last cell
    by_number = hpctune.load_model(grid_job, 11)
    other = hpctune.load_model(grid_job, 0)
    assert np.array_equal(by_place[-1].coef_, by_number[-1].coef_)
    assert not np.array_equal(by_place[-1].coef_, other[-1].coef_)
    with pytest.raises(UsageError, match="not both"):
        hpctune.load_model(grid_job, 3, lat=49.0, lon=3.5)
