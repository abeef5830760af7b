"""Stops of a run in a two-node allocation on the real SLURM, at random moments: ``scancel``
(SIGTERM to every process of the job) and ``scancel --signal=INT --full``; the job script is
the one ``hpctune render`` writes. hpctune exits 143 or 130, the job is CANCELLED (not a crash
code), no crash in the job's or the workers' log, and the next job resumes to the results of a
job never stopped (``tests/stress_stops.py --layout slurm`` runs more tries)."""

from __future__ import annotations

import os

import pytest
from stress_stops import stress, summary

pytestmark = pytest.mark.slurm

SEED = int(os.environ.get("HPCTUNE_STOPS_SEED", "18"))


@pytest.mark.full
def test_stops_of_an_allocation_run_at_random_moments(slurm_cluster, tmp_path):
    lines: list[str] = []
    done = stress(["slurm"], 2, ["INT", "TERM"], SEED, 1.0, tmp_path, report=lines.append)
    print(f"seed {SEED}: python tests/stress_stops.py --layout slurm --seed {SEED}")
    print("\n".join(lines + summary(done)))
    failed = [t.line() for t in done if t.problems]
    assert not failed, f"seed {SEED}:\n" + "\n".join(failed)
    assert all(t.resumed_equal for t in done)
