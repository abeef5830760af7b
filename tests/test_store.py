"""Journals, atomic files and the run lock of the output folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from helpers import read_only_folder

from hpctune.errors import OutputError
from hpctune.output import journal as journal_module
from hpctune.output.files import write_atomic
from hpctune.output.folder import Store
from hpctune.output.journal import HEADER, Journal, read_journal
from hpctune.output.latest import LatestRecords
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


def test_status_counts_from_journals_and_from_results(tmp_path):
    """The one tally: journals count each partition's winning record (pending is what the
    total leaves, never below 0; an unknown status is not counted), results.nc every row."""
    import xarray as xr

    journal = Journal(tmp_path)
    for i, status in enumerate(("ok", "ok", "skipped", "failed", "weird")):
        journal.append(record(i, status))
    journal.close()
    latest = LatestRecords([journal.path])
    counts = latest.counts(total=6)
    assert counts.to_dict() == {"total": 6, "ok": 2, "skipped": 1, "failed": 1, "pending": 2}
    assert counts.done == 4 and counts.share("ok") == pytest.approx(1 / 3)
    assert latest.counts(total=3).pending == 0
    assert latest.counts(np.array([1, 3, 9])).to_dict()["failed"] == 1
    unknown = latest.counts()
    assert unknown.total is None and unknown.pending is None and unknown.share("ok") is None
    results = xr.Dataset({"status": ("space", ["ok", "pending", "failed", "ok"])})
    assert StatusCounts.from_results(results).text() == "2 ok, 0 skipped, 1 failed, 1 pending"


def test_a_journal_that_grows_between_the_scans_shifts_no_other_journals_record(tmp_path):
    """Which record wins is decided on one scan and the winners read on a second: a worker
    still appending in between (a lost batch computed again as the run ends) must not move the
    later journals' records, or the last journal's failure is dropped and reads as pending."""
    old, last = Journal(tmp_path / "a"), Journal(tmp_path / "b")
    old.append(record(0, "ok"))
    old.append(record(2, "ok"))
    last.append(record(1, "failed"))
    latest = LatestRecords([old.path, last.path])
    old.append(record(3, "ok"))  # after the first scan
    old.close()
    last.close()
    assert {i: r["status"] for i, r in latest.records()} == {0: "ok", 2: "ok", 1: "failed"}


def test_a_journal_read_a_few_bytes_at_a_time_gives_the_same_records(tmp_path, monkeypatch):
    """Journals are read a block at a time (a million records do not sit in memory): frames
    cut by a block's end, a torn tail and a damaged frame read as with one whole read."""
    journal = Journal(tmp_path)
    for i in range(40):
        journal.append({**record(i), "reason": "x" * (i * 7 % 50)})
    journal.close()
    data = journal.path.read_bytes()
    torn = tmp_path / "torn.log"
    torn.write_bytes(data[:-9])
    damaged = tmp_path / "damaged.log"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(flipped))
    whole = {p: read_journal(p) for p in (journal.path, torn, damaged)}
    assert len(whole[journal.path][0]) == 40 and whole[journal.path][1] == 0
    assert len(whole[torn][0]) == 39 and whole[torn][1] > 9
    assert 0 < len(whole[damaged][0]) < 39
    for block in (1, 13, 64, 200):
        monkeypatch.setattr(journal_module, "READ_BLOCK", block)
        for path, expected in whole.items():
            assert read_journal(path) == expected, (path.name, block)


def test_the_latest_records_are_read_without_holding_them(tmp_path):
    """The winning record of each partition (the latest, but never a failure after a finished
    one) comes out once, in journal order; statuses and the finished mask agree with it."""
    store = Store(tmp_path)
    first = Journal(store.parts)
    for i, status in ((0, "failed"), (1, "ok"), (2, "failed"), (0, "failed")):
        first.append({**record(i, status), "reason": f"first {i}"})
    first.close()
    second = Journal(store.parts)
    for i, status in ((0, "ok"), (1, "failed"), (2, "failed"), (1, "skipped"), (4, "ok")):
        second.append({**record(i, status), "reason": f"second {i}"})
    second.close()
    os.utime(first.path, ns=(1, 1))  # oldest first, whatever the clock did
    latest = store.latest()
    pairs = list(latest.records())
    assert [(i, r["status"], r["reason"]) for i, r in pairs] == [
        (0, "ok", "second 0"),
        (2, "failed", "second 2"),
        (1, "skipped", "second 1"),
        (4, "ok", "second 4"),
    ]
    assert len(latest) == 4
    assert latest.status.tolist() == [0, 1, 2, -1, 0]
    assert latest.finished(6).tolist() == [True, True, False, False, True, False]
    assert latest.finished(2).tolist() == [True, True]
    assert {i: r["status"] for i, r in store.records().items()} == dict(
        (i, r["status"]) for i, r in pairs
    )
    assert LatestRecords.of_folder(tmp_path / "none").finished(3).tolist() == [False] * 3
