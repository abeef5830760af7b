"""Models live in a few append-only packs (one per writing process), each found from its
partition's journal record or results.nc; they load without running code from the pack, a
tampered one is refused, a torn pack tail loses no recorded partition, and an older output
folder's one ``.skops`` file per partition is still read."""

from __future__ import annotations

import errno
import json
import os
import shutil
import zlib

import numpy as np
import pytest
import xarray as xr
from helpers import REAL_DATA, real_data_spec, tamper_model, write_spec
from helpers_cli import hpctune as cli
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import hpctune
from hpctune.errors import ModelError, OutputError
from hpctune.output import journal as journals
from hpctune.output import packs
from hpctune.output.folder import Store
from hpctune.output.journal import Journal, read_journal
from hpctune.output.lookup import find_model
from hpctune.search.model_file import load_model, load_model_file

TEST_FROM = np.datetime64("2016-01-01")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, dask_client):
    """The demo's layout on the real data (a quick Ridge), run once: its folder and results."""
    folder = tmp_path_factory.mktemp("models")
    data = folder / REAL_DATA.name
    shutil.copy(REAL_DATA, data)
    job = write_spec(folder, real_data_spec(data))
    results = hpctune.run(job, client=dask_client).results.load()
    return folder, results


@pytest.fixture
def copy(finished, tmp_path):
    """A private copy of the finished folder (spec, data, output) to change; its job."""
    folder = shutil.copytree(finished[0], tmp_path / "copy")
    return hpctune.load_spec(folder / "job.yaml")


def _job(finished):
    return hpctune.load_spec(finished[0] / "job.yaml")


def _test_period(model, cell):
    """The model's predictions and the observations on the test period of ``cell``."""
    data = xr.open_dataset(REAL_DATA)
    late = data.time.values >= TEST_FROM
    x = np.stack([data[v].values[cell, late] for v in real_data_spec(REAL_DATA)["data"]["inputs"]])
    x = x.T
    y = data.sig.values[cell, late]
    valid = np.isfinite(x).all(axis=1) & np.isfinite(y)
    return model.predict(x[valid]), y[valid]


def test_a_run_writes_its_models_in_a_few_packs_that_results_nc_points_into(finished):
    folder, results = finished
    store = Store(folder / "out" / "synthetic")
    files = sorted(p.name for p in store.models.iterdir())
    assert files and all(name.endswith(".pack") for name in files)
    assert len(files) <= 2  # one per worker process of the session's cluster, for 5 models
    assert list(results.status.values) == ["ok"] * 5
    for cell in range(5):
        name = str(results.model_file.values[cell])
        assert name.startswith("models/") and name[len("models/") :] in files
        offset, size = int(results.model_offset.values[cell]), int(results.model_size.values[cell])
        with open(folder / "out" / "synthetic" / name, "rb") as pack:
            pack.seek(offset)
            blob = pack.read(size)
        # the bytes results.nc points at are the model itself: a skops zip, as the record says
        assert blob[:2] == b"PK" and len(blob) == size
        assert store.model_location(cell) == packs.ModelLocation(name[7:], offset, size)
    records = [r for p in store.parts.glob("*.log") for r in read_journal(p)[0]]
    assert sorted(r["index"] for r in records if "model" in r) == list(range(5))


def test_load_model_by_index_and_by_coordinates_gives_the_runs_test_r2(finished, copy):
    """Each cell's model, by its number and by its coordinates, predicts its test period with
    exactly the r2 of results.nc; found from the journals alone (no results.nc) the same."""
    job, results = _job(finished), finished[1]
    data = xr.open_dataset(REAL_DATA)
    (copy.output_dir / "results.nc").unlink()
    for cell in range(5):
        predicted, y = _test_period(load_model(job, cell), cell)
        assert abs(r2_score(y, predicted) - results.test_r2.values[cell]) < 1e-9
        place = {
            "latitude": float(data.latitude.values[cell]),
            "longitude": float(data.longitude.values[cell]),
        }
        by_place, _ = _test_period(hpctune.load_model(job, **place), cell)
        from_journals, _ = _test_period(hpctune.load_model(copy, cell), cell)
        np.testing.assert_array_equal(by_place, predicted)
        np.testing.assert_array_equal(from_journals, predicted)


def _frames(path):
    """``(start, end)`` of each journal record of ``path``."""
    raw = path.read_bytes()
    spans, at = [], 0
    while at + journals.HEADER.size <= len(raw):
        length = journals.HEADER.unpack_from(raw, at)[1]
        spans.append((at, at + journals.HEADER.size + length))
        at = spans[-1][1]
    return spans


def test_a_torn_pack_tail_and_its_missing_record_lose_no_finished_partition(
    finished, copy, dask_client
):
    """A process killed while it wrote a model: the pack ends in half a frame and the record
    never came. The resumed run computes that partition alone, into a new pack, and every
    result is as before."""
    store = Store(copy.output_dir)
    journal = max(store.parts.glob("*.log"), key=lambda p: len(_frames(p)))
    start, _ = _frames(journal)[-1]
    lost = read_journal(journal)[0][-1]
    with open(journal, "r+b") as handle:
        handle.truncate(start)
    pack = store.models / lost["model"]["pack"]
    with open(pack, "r+b") as handle:
        handle.truncate(lost["model"]["offset"] + lost["model"]["size"] // 2)
    (copy.output_dir / "results.nc").unlink()
    before = sorted(p.name for p in store.models.iterdir())

    summary = hpctune.run(copy, client=dask_client)
    assert (summary.resumed, summary.ok) == (4, 5)
    after = sorted(p.name for p in store.models.iterdir())
    assert set(before) < set(after) and len(after) == len(before) + 1
    again = summary.results
    for name in ("status", "best_score", "best_ridge__alpha", "test_r2", "n_train"):
        np.testing.assert_array_equal(again[name].values, finished[1][name].values)
    assert again.model_file.values[lost["index"]] != finished[1].model_file.values[lost["index"]]
    for cell in range(5):
        predicted, y = _test_period(hpctune.load_model(copy, cell), cell)
        assert abs(r2_score(y, predicted) - again.test_r2.values[cell]) < 1e-9


def _smuggle(schema):
    schema["__module__"] = "builtins"
    schema["__class__"] = "eval"


def test_a_model_in_a_pack_asking_for_other_types_is_refused(copy):
    tamper_model(copy, 1, _smuggle)
    with pytest.raises(ModelError, match=r"refusing to load models/.*\.pack .* builtins\.eval"):
        load_model(copy, 1)
    assert load_model(copy, 0) is not None


@pytest.mark.full
def test_predict_refuses_a_model_in_a_pack_asking_for_other_types(copy, capsys, tmp_path):
    """Exit 2, one line naming the type and ``--trust``, nothing written."""
    tamper_model(copy, 1, _smuggle)
    out = tmp_path / "pred.nc"
    spec = copy.output_dir.parent.parent / "job.yaml"
    refused = cli(capsys, "predict", spec, "-o", out, "--set", "cluster.processes=false")
    assert refused.code == 2, refused.err
    assert "builtins.eval" in refused.err and "--trust builtins.eval" in refused.err
    assert len(refused.err.strip().splitlines()) == 1 and not out.exists()


def test_an_older_output_with_one_skops_file_per_partition_is_still_read(finished, copy):
    """Records without a place and ``models/N.skops`` files (hpctune before packs): loaded,
    and merged into results.nc as whole files (offset 0, size -1)."""
    store = Store(copy.output_dir)
    for path in store.parts.glob("*.log"):
        records = read_journal(path)[0]
        frames = b""
        for record in records:
            where = packs.location_of(record, 5)
            if where is not None:
                (store.models / f"{record['index']}.skops").write_bytes(store.read_model(where))
            payload = json.dumps({k: v for k, v in record.items() if k != "model"}).encode()
            frames += journals.HEADER.pack(journals.MAGIC, len(payload), zlib.crc32(payload))
            frames += payload
        path.write_bytes(frames)
    for pack in store.models.glob("*.pack"):
        pack.unlink()
    (copy.output_dir / "results.nc").unlink()

    index = store.model_index()  # what predict's workers are given
    assert index.location(3) == packs.ModelLocation("3.skops", 0, -1)
    assert store.read_model(index.location(3)) == (store.models / "3.skops").read_bytes()
    for cell in (0, 4):  # from the journals
        predicted, y = _test_period(load_model(copy, cell), cell)
        assert abs(r2_score(y, predicted) - finished[1].test_r2.values[cell]) < 1e-9
    merged = hpctune.merge(copy)
    assert list(merged.model_file.values) == [f"models/{i}.skops" for i in range(5)]
    assert list(merged.model_offset.values) == [0] * 5
    assert list(merged.model_size.values) == [-1] * 5
    predicted, _ = _test_period(load_model(copy, 2), 2)  # from results.nc
    np.testing.assert_array_equal(predicted, _test_period(load_model(_job(finished), 2), 2)[0])


def test_a_partitions_model_is_found_in_the_journals_as_its_winning_record(tmp_path):
    """Without results.nc: the record that wins (a later failure never hides a finished
    partition; partition 1 is not partition 10), and a torn record is not read."""
    store = Store(tmp_path)
    first = Journal(store.parts)
    first.append({"index": 1, "status": "failed", "reason": "crashed"})
    first.append({"index": 10, "status": "ok"}, model=b"ten")
    first.append({"index": 1, "status": "ok"}, model=b"one")
    first.close()
    second = Journal(store.parts)
    second.append({"index": 1, "status": "failed", "reason": "computed again"})
    second.append({"index": 2, "status": "ok"}, model=b"two")
    second.close()
    with open(second.path, "ab") as handle:
        handle.write(journals.HEADER.pack(journals.MAGIC, 100, 0) + b'{"index":3,"status"')
    os.utime(first.path, ns=(1, 1))  # the first is older
    index = packs.ModelIndex.of_records(store.latest().records(), 11)
    for partition, blob in ((1, b"one"), (10, b"ten"), (2, b"two")):
        where = find_model(tmp_path, partition, 11)
        assert where == index.location(partition) and store.read_model(where) == blob
    assert find_model(tmp_path, 3, 11) is None and find_model(tmp_path, 0, 11) is None
    assert len(index) == 3


def test_packs_roll_over_and_a_failed_write_leaves_an_unread_tail(tmp_path, monkeypatch):
    monkeypatch.setattr(packs, "PACK_BYTES", 100)
    pack = packs.ModelPack(tmp_path)
    first, second = pack.append(b"a" * 80), pack.append(b"b" * 10)
    third = pack.append(b"c" * 5)
    assert first.file == second.file != third.file  # the first pack passed 100 bytes
    assert (first.offset, second.offset) == (packs.HEADER.size, 2 * packs.HEADER.size + 80)
    assert [packs.read_model(tmp_path, w) for w in (first, second, third)] == [
        b"a" * 80,
        b"b" * 10,
        b"c" * 5,
    ]

    def full(fd, data):
        os.write(fd, data[:3])  # a torn frame, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(packs, "_write_all", full)
    with pytest.raises(OutputError, match=r"cannot write .*/.*\.pack: no space left on the device"):
        pack.append(b"d" * 5)
    monkeypatch.undo()
    fourth = pack.append(b"e" * 5)
    assert fourth.file not in (first.file, third.file)  # a failed write closes its pack
    pack.close()

    with open(tmp_path / first.file, "r+b") as handle:
        handle.truncate(first.offset + 40)
    with pytest.raises(ModelError, match="damaged or cut short"):
        packs.read_model(tmp_path, first)
    with open(tmp_path / third.file, "r+b") as handle:
        handle.seek(third.offset)
        handle.write(b"X")
    with pytest.raises(ModelError, match="damaged or cut short"):
        packs.read_model(tmp_path, third)


def test_damaged_files_are_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.skops"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(ModelError, match="damaged or not a skops file"):
        load_model_file(garbage)
    with pytest.raises(ModelError, match="no model file"):
        load_model_file(tmp_path / "absent.skops")


@pytest.mark.parametrize(
    "model",
    [
        make_pipeline(StandardScaler(), Ridge(alpha=0.5)),
        RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0),
    ],
    ids=["pipeline", "forest"],
)
def test_a_model_is_written_as_skops_writes_it_but_for_the_json_layout(model):
    import io
    import zipfile

    import skops.io

    from hpctune.search.model_file import dump_model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    model.fit(x, y)
    ours, theirs = dump_model(model), skops.io.dumps(model)
    with zipfile.ZipFile(io.BytesIO(ours)) as a, zipfile.ZipFile(io.BytesIO(theirs)) as b:
        assert b"\n" not in a.read("schema.json")  # compact: Python's C encoder writes it
        # the same objects and arrays; their ids (object ids, and the arrays' file names)
        # differ from one dump to the next
        mine, skops_own = _by_order(a), _by_order(b)
        assert mine == skops_own
    loaded = skops.io.loads(ours, trusted=skops.io.get_untrusted_types(data=ours))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def _by_order(archive):
    """A skops archive's schema and arrays with each object id replaced by its order of
    first appearance."""
    import json

    seen: dict = {}

    def order(value):
        return seen.setdefault(str(value).removesuffix(".npy"), f"#{len(seen)}")

    def walk(node):
        if isinstance(node, dict):
            return {k: order(v) if k in ("__id__", "file") else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    schema = walk(json.loads(archive.read("schema.json")))
    arrays = {
        order(name): archive.read(name) for name in archive.namelist() if name != "schema.json"
    }
    return schema, arrays
