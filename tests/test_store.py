"""Journals, atomic files and the run lock of the output folder."""

from __future__ import annotations

import json

import pytest
from helpers import read_only_folder

from hpctune.errors import OutputError
from hpctune.output.files import write_atomic
from hpctune.output.folder import Store
from hpctune.output.journal import HEADER, Journal, read_journal
from hpctune.output.status import StatusCounts


def record(index, status="ok"):
    return {"index": index, "status": status, "reason": "", "best_score": 0.5}


def test_torn_or_damaged_records_are_never_taken_for_finished(tmp_path):
    journal = Journal(tmp_path)
    for i in range(3):
        journal.append(record(i))
    journal.close()
    data = journal.path.read_bytes()
    frame = len(data) // 3
    journal.path.write_bytes(data[: 2 * frame + HEADER.size + 5])  # killed mid-write
    records, torn = read_journal(journal.path)
    assert [r["index"] for r in records] == [0, 1]
    assert torn == HEADER.size + 5
    damaged = bytearray(data)
    damaged[frame + HEADER.size + 2] ^= 0xFF  # a flipped byte in the second record
    journal.path.write_bytes(bytes(damaged))
    records, _ = read_journal(journal.path)
    assert [r["index"] for r in records] == [0]


def test_latest_finished_record_wins_and_failures_are_retried(tmp_path):
    store = Store(tmp_path)
    first = Journal(store.parts)
    first.append(record(0, "failed"))
    first.append(record(1, "ok"))
    first.close()
    second = Journal(store.parts)
    second.append(record(0, "ok"))
    second.append(record(1, "failed"))  # a later failure never hides a finished result
    second.close()
    assert {i: r["status"] for i, r in store.records().items()} == {0: "ok", 1: "ok"}
    third = Journal(store.parts)
    third.append(record(2, "failed"))
    third.close()
    assert sorted(store.finished()) == [0, 1]


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "model.skops"
    write_atomic(target, b"complete")
    assert target.read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["model.skops"]


def test_second_run_on_the_same_output_is_refused(tmp_path):
    store = Store(tmp_path / "out")
    held = store.lock()
    try:
        with pytest.raises(OutputError, match=r"another hpctune run is using .*\(pid \d+ on"):
            Store(tmp_path / "out").lock()
        with pytest.raises(OutputError, match="another hpctune run"):
            Store(tmp_path / "out").lock((0, 2))
    finally:
        for lock in held:
            lock.release()
    slices = [Store(tmp_path / "out").lock((i, 2)) for i in range(2)]  # slices run side by side
    with pytest.raises(OutputError, match="another hpctune run"):
        Store(tmp_path / "out").lock((1, 2))
    for locks in slices:
        for lock in locks:
            lock.release()


def test_read_only_output_is_a_clear_error(tmp_path):
    store = Store(tmp_path)
    with read_only_folder(store.parts), pytest.raises(OutputError, match="permission denied"):
        Journal(store.parts).append(record(0))


def test_journal_records_are_plain_json(tmp_path):
    journal = Journal(tmp_path)
    journal.append(record(7))
    journal.close()
    payload = journal.path.read_bytes()[HEADER.size :]
    assert json.loads(payload)["index"] == 7


def test_status_counts_from_records_and_from_results():
    """The one tally: records count what they say (pending is what the total leaves, never
    below 0; an unknown status is not counted), results.nc counts every row."""
    import xarray as xr

    records = [{"status": s} for s in ("ok", "ok", "skipped", "failed", "weird")]
    counts = StatusCounts.from_records(records, total=6)
    assert counts.to_dict() == {"total": 6, "ok": 2, "skipped": 1, "failed": 1, "pending": 2}
    assert counts.done == 4 and counts.share("ok") == pytest.approx(1 / 3)
    assert StatusCounts.from_records(records, total=3).pending == 0
    unknown = StatusCounts.from_records(records)
    assert unknown.total is None and unknown.pending is None and unknown.share("ok") is None
    results = xr.Dataset({"status": ("space", ["ok", "pending", "failed", "ok"])})
    assert StatusCounts.from_results(results).text() == "2 ok, 0 skipped, 1 failed, 1 pending"
