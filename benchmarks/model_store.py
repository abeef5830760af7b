"""The cost of making a partition's model durable, one file per model against model packs:
files written and CPU per partition, and how long finding and loading one model takes.

    python benchmarks/model_store.py [--partitions 4000]

Each partition's result is the ``tiny`` preset's (a scaler + Ridge pipeline fitted on 300 rows
of 3 inputs, serialised once with skops, its real journal record). ``per-file`` writes it as
hpctune did before packs (``models/NNN.skops`` through a temporary name and a rename, then the
journal record); ``pack`` as it does now (the model appended to the process's pack, then the
record that says where). Serialisation itself (``skops.io.dumps``) is the same in both and left
out. Both write into a fresh folder of the same file system (``--dir``, default the temporary
folder).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def _result(index: int, model: bytes):
    from hpctune.output.record import PartitionResult

    return PartitionResult(
        index=index,
        status="ok",
        best_score=0.5,
        best_params={"ridge__alpha": 1.0},
        cv_scores={"r2": 0.5},
        test_scores={"r2": 0.4, "rmse": 1.0, "mae": 0.8, "pearson": 0.7},
        n_train=250,
        n_test=50,
        fit_seconds=0.01,
        node="node",
        model=model,
    )


def _model() -> bytes:
    import numpy as np
    import skops.io
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    return skops.io.dumps(make_pipeline(StandardScaler(), Ridge()).fit(x, x.sum(axis=1)))


def _write(root: Path, layout: str, partitions: int, model: bytes) -> tuple[float, float]:
    from hpctune.data.partitions import model_file_name
    from hpctune.output.files import write_atomic
    from hpctune.output.journal import Journal

    (root / "parts").mkdir(parents=True)
    (root / "models").mkdir()
    journal = Journal(root / "parts", models=root / "models")
    cpu, wall = time.process_time(), time.perf_counter()
    for index in range(partitions):
        result = _result(index, model)
        if layout == "per-file":
            write_atomic(root / "models" / model_file_name(index, partitions), model)
            journal.append(result.record())
        else:
            journal.append(result.record(), model=result.model)
    journal.close()
    return time.process_time() - cpu, time.perf_counter() - wall


def _lookups(root: Path, partitions: int) -> dict[str, float]:
    """Seconds to find and load one model: from the journals, and from results.nc."""
    import numpy as np
    import xarray as xr

    from hpctune.output.folder import Store
    from hpctune.output.lookup import find_model
    from hpctune.output.packs import ModelColumns
    from hpctune.search.model_file import load_model_bytes

    store = Store(root)
    index = partitions // 2
    started = time.perf_counter()
    where = find_model(root, index, partitions)
    from_journals = time.perf_counter() - started
    assert where is not None
    columns = ModelColumns(partitions)
    for i, record in store.latest().records():
        columns.fill(i, record)
    status = np.full(partitions, "ok", dtype=object)
    ds = xr.Dataset(
        {"status": ("space", status), **{k: ("space", v) for k, v in columns.variables().items()}}
    )
    ds.to_netcdf(root / "results.nc", engine="netcdf4")
    started = time.perf_counter()
    again = find_model(root, index, partitions)
    from_results = time.perf_counter() - started
    assert again == where
    started = time.perf_counter()
    load_model_bytes(store.read_model(where), where)
    load = time.perf_counter() - started
    return {"find_journals_s": from_journals, "find_results_nc_s": from_results, "load_s": load}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=4000)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args(argv)
    model = _model()
    print(
        f"model: {len(model)} bytes of skops; {args.partitions} partitions; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for layout in ("per-file", "pack"):
            root = Path(tmp) / layout
            cpu, wall = _write(root, layout, args.partitions, model)
            files = len(os.listdir(root / "models"))
            size = sum(p.stat().st_size for p in (root / "models").iterdir())
            print(
                f"{layout:>8}: {files:6d} files in models/ ({size / 2**20:.1f} MiB), "
                f"write CPU {1e6 * cpu / args.partitions:7.1f} us/partition, "
                f"wall {1e6 * wall / args.partitions:7.1f} us/partition"
            )
            if layout == "pack":
                found = _lookups(root, args.partitions)
                print(
                    "    one model: " + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in found.items())
                )


if __name__ == "__main__":
    main()
