"""Synthetic spatio-temporal data for the benchmarks, shaped like the real ASCAT/ISBA data.

    python benchmarks/make_data.py --cells 4000 --steps 8000 --files 4 --out /tmp/hpctune-bench/big
    python benchmarks/make_data.py --cells 80 --steps 3000 --files 4 --out DIR \
        --spec DIR/heavy.yaml --preset heavy

Writes ``--files`` NetCDF4 files split along time (``DIR/part-000.nc`` ...), each with dims
(space, time), coordinates latitude(space) and longitude(space) (cells of a 0.25 degree grid
over Europe), time (12-hourly from 2007-01-01) and float32 variables:

- inputs TG1, TG2, TG3 (soil temperature, K: seasonal and day/night cycles, deeper layers
  smoother and lagged), WG1, WG2, WG3 (soil moisture, m3/m3: wetter winters, rain-driven
  anomalies, deeper layers smoother), BIOMA1, BIOMA2 (biomass: a growing season);
- target sig (backscatter, dB): a nonlinear function of the inputs whose coefficients differ
  from cell to cell (tanh of soil moisture, a biomass x moisture product, a frozen-soil tanh of
  temperature), plus noise.

About 15% of the values of every variable are missing (NaN): the inputs share gaps (blocks of
days to weeks where the model run has no output, and scattered steps), the target has its own
gaps (blocks and scattered steps), and a few single input values are missing on their own.
About 72% of the rows are complete.

Variables are compressed (zlib level 1, shuffle) in HDF5 chunks of (min(cells, 100), steps of the
file): reading a range of cells over all time touches few chunks. Data are made one block of 100
cells at a time (all time steps, then written to every file) with a small HDF5 chunk cache, so
memory does not grow with the size (about 420 MiB peak RSS, for 1000 as for 4000 cells x 8000
steps), and the values depend only on the seed and the cell (not on --files).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

INPUTS = ["TG1", "TG2", "TG3", "WG1", "WG2", "WG3", "BIOMA1", "BIOMA2"]
TARGET = "sig"
VARIABLES = [*INPUTS, TARGET]
START = np.datetime64("2007-01-01T00:00", "ns")
STEP_HOURS = 12
BLOCK = 100
"""Cells generated (and written) at a time; also the HDF5 chunk size along space."""
CHUNK_CACHE = 4 * 2**20
"""Bytes of HDF5 chunk cache per variable while writing."""

UNITS = {
    "TG1": ("K", "soil temperature, layer 1"),
    "TG2": ("K", "soil temperature, layer 2"),
    "TG3": ("K", "soil temperature, layer 3"),
    "WG1": ("m3 m-3", "soil moisture, layer 1"),
    "WG2": ("m3 m-3", "soil moisture, layer 2"),
    "WG3": ("m3 m-3", "soil moisture, layer 3"),
    "BIOMA1": ("kg m-2", "above-ground biomass"),
    "BIOMA2": ("kg m-2", "below-ground biomass"),
    "sig": ("dB", "backscatter at 40 degrees incidence"),
}

# --------------------------------------------------------------------------- job presets

#: The searches of the benchmark presets (the data sizes are chosen by compare.py).
PRESETS: dict[str, dict] = {
    "heavy": {
        "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
        "params": {"svr__C": [0.1, 1, 10], "svr__gamma": ["scale", 0.1]},
        "cv": {"kind": "kfold", "splits": 3},
        "scoring": ["r2"],
    },
    "tiny": {
        "estimator": ["sklearn.linear_model.Ridge"],
        "params": {"alpha": [1.0]},
        "cv": {"kind": "kfold", "splits": 2},
        "scoring": ["r2"],
    },
    # the tiny search, for the memory measurements on large data
    "memory": {
        "estimator": ["sklearn.linear_model.Ridge"],
        "params": {"alpha": [1.0]},
        "cv": {"kind": "kfold", "splits": 2},
        "scoring": ["r2"],
    },
    # one cell tuned in depth: 25 candidates x 3 folds on a long time series, where the fits
    # of one search must spread over the workers (cluster.granularity fit)
    "onecell": {
        "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
        "params": {
            "svr__C": [0.1, 0.3, 1, 3, 10],
            "svr__gamma": [0.03, 0.1, 0.3, 1, 3],
        },
        "cv": {"kind": "kfold", "splits": 3},
        "scoring": ["r2"],
    },
}

TEST_FRACTION = 0.2
"""Every preset holds out the last 20% of the time steps as the test period."""


def test_start(steps: int) -> np.datetime64:
    """The first time step of the test period: the last ``TEST_FRACTION`` of the record."""
    first = round(steps * (1 - TEST_FRACTION))
    return START + np.timedelta64(first * STEP_HOURS, "h")


def spec_text(preset: str, data_dir: Path, spec_path: Path, steps: int) -> str:
    """The YAML job spec of ``preset`` for the data in ``data_dir``."""
    import yaml

    search = PRESETS[preset]
    base = spec_path.resolve().parent
    data_rel = os.path.relpath(data_dir.resolve(), base)
    output_rel = os.path.relpath((data_dir / f"results-{preset}").resolve(), base)
    start = str(test_start(steps).astype("datetime64[s]")).replace("T", " ")
    spec = {
        "name": f"bench-{preset}",
        "data": {
            "paths": f"{data_rel}/part-*.nc",
            "space": "space",
            "time": "time",
            "inputs": INPUTS,
            "target": TARGET,
            "test": {"from": start},
        },
        "partition": {"by": "cell"},
        "search": {
            "method": "grid",
            **search,
            "seed": 0,
            "min_samples": 50,
        },
        "cluster": {"mode": "local", "dashboard": False},
        "output": output_rel,
    }
    header = (
        f"# Benchmark preset {preset!r} (written by benchmarks/make_data.py).\n"
        f"# Test period: the last {int(TEST_FRACTION * 100)}% of the {steps} time steps.\n"
    )
    return header + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)


def write_spec(preset: str, data_dir: Path, spec_path: Path, steps: int | None = None) -> Path:
    if preset not in PRESETS:
        raise SystemExit(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    if steps is None:
        steps = count_steps(data_dir)
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(spec_text(preset, data_dir, spec_path, steps), encoding="utf-8")
    return spec_path


def count_steps(data_dir: Path) -> int:
    import netCDF4

    total = 0
    for path in sorted(data_dir.glob("part-*.nc")):
        with netCDF4.Dataset(path) as nc:
            total += len(nc.dimensions["time"])
    if not total:
        raise SystemExit(f"no part-*.nc files in {data_dir}")
    return total


# --------------------------------------------------------------------------- the grid


def grid_cells(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of ``n`` distinct land-like cells of a 0.25 degree grid over
    Europe (35N-70N, 10W-30E), sorted from north-west to south-east as a raster would be.
    More cells than the grid's 22,400 come from a grid halved in step until they fit (0.03125
    degrees holds 1.4 million)."""
    step, rows, cols = 0.25, 140, 160
    while n > rows * cols and step > 0.25 / 64:
        step, rows, cols = step / 2, rows * 2, cols * 2
    lats = 35.0 + step / 2 + step * np.arange(rows)  # 35.125 .. 69.875 at 0.25 degrees
    lons = -10.0 + step / 2 + step * np.arange(cols)  # -9.875 .. 29.875 at 0.25 degrees
    total = lats.size * lons.size
    if n > total:
        raise SystemExit(f"--cells {n}: at most {total} cells on the grid")
    rng = np.random.default_rng([seed, 7])
    chosen = np.sort(rng.choice(total, size=n, replace=False))
    row, col = np.divmod(chosen, lons.size)
    return lats[::-1][row].astype(np.float64), lons[col].astype(np.float64)


# --------------------------------------------------------------------------- the values


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float) -> np.ndarray:
    """AR(1) noise along the last axis with unit stationary variance."""
    from scipy.signal import lfilter

    eps = rng.standard_normal(shape) * math.sqrt(1 - phi * phi)
    return lfilter([1.0], [1.0, -phi], eps, axis=-1)


def _smooth(x: np.ndarray, phi: float) -> np.ndarray:
    """Exponential smoothing (a lagged, damped copy) along the last axis."""
    from scipy.signal import lfilter

    out, _ = lfilter([1 - phi], [1.0, -phi], x, axis=-1, zi=x[:, :1] * phi)
    return out


def _gaps(
    rng: np.random.Generator, shape: tuple[int, int], block: float, scatter: float, mean_len: float
) -> np.ndarray:
    """A mask (True = missing) with about ``block`` of the steps in runs of mean length
    ``mean_len`` steps and ``scatter`` of them scattered."""
    cells, steps = shape
    mask = rng.random(shape) < scatter
    if block > 0:
        n_runs = max(1, round(block * steps / mean_len))
        starts = rng.integers(0, steps, size=(cells, n_runs))
        lengths = rng.geometric(1 / mean_len, size=(cells, n_runs))
        diff = np.zeros((cells, steps + 1), dtype=np.int32)
        rows = np.repeat(np.arange(cells), n_runs)
        np.add.at(diff, (rows, starts.ravel()), 1)
        np.add.at(diff, (rows, np.minimum(starts + lengths, steps).ravel()), -1)
        mask |= np.cumsum(diff[:, :steps], axis=1) > 0
    return mask


def make_block(
    seed: int, block: int, lat: np.ndarray, lon: np.ndarray, steps: int
) -> dict[str, np.ndarray]:
    """All variables of one block of cells over all time steps, float32 (cells, steps)."""
    rng = np.random.default_rng([seed, 1, block])
    n = lat.size
    col = lambda a: np.asarray(a, dtype=np.float64)[:, None]  # noqa: E731
    days = np.arange(steps) * (STEP_HOURS / 24.0)
    phase = 2 * np.pi * (days - 105.0) / 365.25  # warmest around late July
    season = np.sin(phase)[None, :]
    night = np.where(np.arange(steps) % 2 == 0, -1.0, 1.0)[None, :]  # 00 h and 12 h passes

    # soil temperature: colder and more seasonal to the north and east
    t_mean = col(300.0 - 0.45 * (lat - 35.0) - 0.05 * lon + rng.normal(0, 1.0, n))
    t_amp = col(7.0 + 0.12 * (lat - 35.0) + 0.08 * lon + rng.normal(0, 0.8, n))
    weather = 2.5 * _ar1(rng, (n, steps), 0.9)
    tg1 = t_mean + t_amp * season + 3.0 * night + weather
    tg2 = _smooth(tg1, 0.8)
    tg3 = _smooth(tg1, 0.97)

    # soil moisture: wetter in winter, rain events decaying over days to weeks
    w_mean = col(0.27 + rng.normal(0, 0.04, n))
    w_amp = col(0.05 + rng.uniform(0, 0.03, n))
    rain = rng.exponential(1.0, (n, steps)) * (rng.random((n, steps)) < 0.08)
    wet = _smooth(rain, 0.95)
    wet = (wet - wet.mean(axis=1, keepdims=True)) / (wet.std(axis=1, keepdims=True) + 1e-9)
    wg1 = np.clip(w_mean - w_amp * season + 0.04 * wet, 0.03, 0.48)
    wg2 = np.clip(_smooth(wg1, 0.9), 0.03, 0.48)
    wg3 = np.clip(_smooth(wg1, 0.99), 0.03, 0.48)

    # biomass: a growing season peaking in summer, larger in the south
    b_peak = col(0.12 + 0.1 * rng.random(n) + 0.002 * (70.0 - lat))
    growth = np.clip(np.sin(phase + 0.3), 0, None) ** 2
    bioma1 = np.clip(0.03 + b_peak * growth + 0.01 * _ar1(rng, (n, steps), 0.98), 0.0, None)
    bioma2 = np.clip(1.6 * _smooth(bioma1, 0.99) + 0.01 * _ar1(rng, (n, steps), 0.98), 0.0, None)

    # backscatter: per-cell nonlinear operator of the states
    c0 = col(rng.normal(-10.0, 1.0, n))
    a_moist = col(rng.uniform(0.8, 2.5, n))
    k_moist = col(rng.uniform(10.0, 30.0, n))
    a_veg = col(rng.uniform(-1.5, 1.5, n))
    a_bio = col(rng.uniform(-4.0, 2.0, n))
    a_frozen = col(rng.uniform(0.5, 2.0, n))
    noise = col(rng.uniform(0.15, 0.4, n))
    sig = (
        c0
        + a_moist * np.tanh(k_moist * (wg1 - w_mean))
        + a_veg * 20.0 * bioma1 * (wg2 - w_mean)
        + a_bio * bioma2
        + a_frozen * np.tanh((tg1 - 273.15) / 3.0)
        + 0.3 * np.tanh((tg2 - t_mean) / 5.0) * wg3 * 4.0
        + noise * rng.standard_normal((n, steps))
    )

    values = {
        "TG1": tg1,
        "TG2": tg2,
        "TG3": tg3,
        "WG1": wg1,
        "WG2": wg2,
        "WG3": wg3,
        "BIOMA1": bioma1,
        "BIOMA2": bioma2,
        "sig": sig,
    }
    out = {name: v.astype(np.float32) for name, v in values.items()}
    # gaps: shared by the inputs (the model run), the target's own, a few single values
    state_gap = _gaps(rng, (n, steps), block=0.10, scatter=0.05, mean_len=40)
    obs_gap = _gaps(rng, (n, steps), block=0.05, scatter=0.105, mean_len=20)
    for name in INPUTS:
        lone = rng.random((n, steps)) < 0.002
        out[name][state_gap | lone] = np.nan
    out[TARGET][obs_gap] = np.nan
    return out


# --------------------------------------------------------------------------- writing


def generate(
    cells: int, steps: int, files: int, out: Path, seed: int = 0, verbose: bool = True
) -> list[Path]:
    import netCDF4

    if cells < 1 or steps < 2 or files < 1:
        raise SystemExit("need --cells >= 1, --steps >= 2, --files >= 1")
    if files > steps:
        raise SystemExit(f"--files {files} is more than --steps {steps}")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.nc"):
        old.unlink()
    lat, lon = grid_cells(cells, seed)
    bounds = [steps * i // files for i in range(files + 1)]
    chunk_cells = min(cells, BLOCK)
    paths = [out / f"part-{i:03d}.nc" for i in range(files)]
    tmp = [p.with_suffix(".nc.tmp") for p in paths]
    handles = []
    started = time.perf_counter()
    try:
        for i, path in enumerate(tmp):
            t0, t1 = bounds[i], bounds[i + 1]
            nc = netCDF4.Dataset(path, "w", format="NETCDF4")
            handles.append(nc)
            nc.title = "Synthetic land-surface states and backscatter (hpctune benchmarks)"
            nc.source = f"benchmarks/make_data.py --cells {cells} --steps {steps} --seed {seed}"
            nc.createDimension("space", cells)
            nc.createDimension("time", t1 - t0)
            v = nc.createVariable("latitude", "f8", ("space",))
            v.units, v.standard_name = "degrees_north", "latitude"
            v[:] = lat
            v = nc.createVariable("longitude", "f8", ("space",))
            v.units, v.standard_name = "degrees_east", "longitude"
            v[:] = lon
            v = nc.createVariable("time", "i8", ("time",))
            v.units = "hours since 2007-01-01 00:00:00"
            v.calendar = "proleptic_gregorian"
            v.standard_name = "time"
            v[:] = np.arange(t0, t1, dtype=np.int64) * STEP_HOURS
            for name in VARIABLES:
                var = nc.createVariable(
                    name,
                    "f4",
                    ("space", "time"),
                    zlib=True,
                    complevel=1,
                    shuffle=True,
                    chunksizes=(chunk_cells, t1 - t0),
                    fill_value=np.float32(np.nan),
                )
                var.units, var.long_name = UNITS[name]
                var.coordinates = "latitude longitude"
                # a small cache: each block fills whole chunks, which can go to disk at once
                # (the default cache keeps up to tens of MiB of dirty chunks per variable)
                var.set_var_chunk_cache(size=CHUNK_CACHE, nelems=61, preemption=1.0)
        n_blocks = math.ceil(cells / BLOCK)
        for b in range(n_blocks):
            c0, c1 = b * BLOCK, min(cells, (b + 1) * BLOCK)
            values = make_block(seed, b, lat[c0:c1], lon[c0:c1], steps)
            for i, nc in enumerate(handles):
                t0, t1 = bounds[i], bounds[i + 1]
                for name in VARIABLES:
                    nc.variables[name][c0:c1, :] = values[name][:, t0:t1]
            if verbose and (b + 1) % 10 == 0:
                done = c1 / cells
                print(
                    f"  {c1}/{cells} cells ({done:.0%}) in {time.perf_counter() - started:.1f} s",
                    file=sys.stderr,
                )
    finally:
        for nc in handles:
            nc.close()
    for src, dst in zip(tmp, paths, strict=True):
        os.replace(src, dst)
    if verbose:
        size = sum(p.stat().st_size for p in paths)
        raw = cells * steps * len(VARIABLES) * 4
        print(
            f"wrote {files} file(s) to {out}: {cells} cells x {steps} steps, "
            f"{raw / 2**20:.0f} MiB of float32 values, {size / 2**20:.0f} MiB on disk, "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return paths


def data_mib(cells: int, steps: int) -> float:
    """MiB of float32 values of the variables (inputs and target)."""
    return cells * steps * len(VARIABLES) * 4 / 2**20


def ensure(
    cells: int, steps: int, files: int, out: Path, seed: int = 0, verbose: bool = True
) -> Path:
    """Generate the data in ``out`` unless a complete set with these sizes is there."""
    stamp = out / "MADE"
    wanted = f"cells={cells} steps={steps} files={files} seed={seed}\n"
    if stamp.exists() and stamp.read_text() == wanted and len(list(out.glob("part-*.nc"))) == files:
        return out
    generate(cells, steps, files, out, seed, verbose)
    stamp.write_text(wanted)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, required=True, help="grid cells (space)")
    parser.add_argument("--steps", type=int, required=True, help="time steps (12-hourly)")
    parser.add_argument("--files", type=int, default=1, help="files, split along time")
    parser.add_argument("--out", type=Path, required=True, help="folder for part-NNN.nc")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spec", type=Path, help="also write a job spec YAML here")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="heavy",
        help="the search of the spec (default: heavy)",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="keep data already made with the same sizes and seed",
    )
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.if_missing:
        ensure(args.cells, args.steps, args.files, args.out, args.seed, not args.quiet)
    else:
        generate(args.cells, args.steps, args.files, args.out, args.seed, not args.quiet)
        (args.out / "MADE").write_text(
            f"cells={args.cells} steps={args.steps} files={args.files} seed={args.seed}\n"
        )
    if args.spec:
        path = write_spec(args.preset, args.out, args.spec, args.steps)
        if not args.quiet:
            print(f"wrote {path} (preset {args.preset})", file=sys.stderr)


if __name__ == "__main__":
    main()
