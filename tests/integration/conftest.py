"""Pytest plumbing for tests that need the real local SLURM cluster.

Every test under tests/integration/ (and any test marked ``slurm`` collected in
the same run) is skipped, with the reason, when the cluster is not reachable (sbatch missing,
``scontrol ping`` not UP, or node1/node2 not usable). With the environment
variable ``HPCTUNE_REQUIRE_SLURM=1`` (meant for CI) such tests fail instead.

Tests marked ``slurm_slow`` (a minute or more: real walltime signals, worker jobs that leave
and are replaced) run only with ``HPCTUNE_SLURM_SLOW=1``; without it they are skipped, or,
under ``CI=true``, failed: CI runs every test.

Start the cluster with ``bash tests/slurm/up.sh``.

Fixtures:

* ``slurm_cluster`` (session): checks the cluster and returns a
  :class:`SlurmCluster` with its nodes, partition and MaxArraySize.
* ``slurm_jobs`` (function): a :class:`JobTracker` that submits scripts into the
  test's ``tmp_path`` and cancels whatever the test left in the queue.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # make `import slurmtools` work in any import mode
    sys.path.insert(0, str(_HERE))

import slurmtools  # noqa: E402

REQUIRE_ENV = "HPCTUNE_REQUIRE_SLURM"
SLOW_ENV = "HPCTUNE_SLURM_SLOW"

_status: tuple[bool, str] | None = None


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _require() -> bool:
    return _truthy(REQUIRE_ENV)


def slurm_status_cached() -> tuple[bool, str]:
    """slurmtools.slurm_status(), computed once per test session."""
    global _status
    if _status is None:
        _status = slurmtools.slurm_status()
    return _status


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slurm: needs the local SLURM test cluster (bash tests/slurm/up.sh); "
        f"skipped when it is down, failed instead when {REQUIRE_ENV}=1",
    )
    config.addinivalue_line(
        "markers",
        f"slurm_slow: a SLURM test of a minute or more; runs with {SLOW_ENV}=1, skipped "
        "without it, failed instead under CI=true",
    )


def _is_local(item: pytest.Item) -> bool:
    return _HERE in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_local(item):
            item.add_marker(pytest.mark.slurm)
    # Tests elsewhere marked `slurm` (seen when this directory is collected
    # too): pytest_runtest_setup below only runs for tests in this directory.
    foreign = [i for i in items if not _is_local(i) and i.get_closest_marker("slurm")]
    if not foreign:
        return
    ok, reason = slurm_status_cached()
    if ok:
        return
    for item in foreign:
        if _require():
            message = f"{REQUIRE_ENV}=1 but {reason}"

            def _fail(message: str = message) -> None:
                pytest.fail(message, pytrace=False)

            item.runtest = _fail  # type: ignore[method-assign]
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slurm_slow") is not None and not _truthy(SLOW_ENV):
        reason = f"takes a minute or more; set {SLOW_ENV}=1 to run it"
        if _truthy("CI"):
            pytest.fail(f"CI=true but {SLOW_ENV} is not set: this test {reason}", pytrace=False)
        pytest.skip(reason)
    if item.get_closest_marker("slurm") is None:
        return
    ok, reason = slurm_status_cached()
    if ok:
        return
    if _require():
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class SlurmCluster:
    """What the local test cluster offers."""

    nodes: tuple[str, ...] = slurmtools.NODES
    partition: str = "debug"
    cpus_per_node: int = 2
    max_array_size: int = 10


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    ok, reason = slurm_status_cached()
    if not ok:
        if _require():
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return SlurmCluster(max_array_size=slurmtools.max_array_size())


@dataclass
class JobTracker:
    """Submits jobs from one test directory and remembers them for cleanup."""

    directory: Path
    job_ids: list[str] = field(default_factory=list)

    def submit(self, body: str, *sbatch_args: str, name: str = "job.sh") -> str:
        """Write ``body`` to directory/name, sbatch it from directory; return the id."""
        job_id = slurmtools.submit_script(self.directory, body, *sbatch_args, name=name)
        self.job_ids.append(job_id)
        return job_id

    def submit_file(self, script: str | os.PathLike[str], *sbatch_args: str) -> str:
        """sbatch an existing script (run from its directory); return the id."""
        job_id = slurmtools.submit(script, *sbatch_args)
        self.job_ids.append(job_id)
        return job_id

    def track(self, job_id: str) -> str:
        """Register a job submitted by other means (e.g. qsub) for cleanup."""
        self.job_ids.append(str(job_id))
        return str(job_id)

    def wait(self, job_id: str, timeout: float = 60.0) -> dict[str, str]:
        """slurmtools.wait_for_job: wait until it left the queue; return its states."""
        return slurmtools.wait_for_job(job_id, timeout=timeout)

    def cancel_all(self) -> None:
        leftover = []
        for job_id in self.job_ids:
            try:
                if slurmtools.queue_states(job_id):
                    leftover.append(job_id)
            except slurmtools.SlurmError:
                leftover.append(job_id)
        slurmtools.cancel(*leftover)


@pytest.fixture
def slurm_jobs(slurm_cluster: SlurmCluster, tmp_path: Path) -> Iterator[JobTracker]:
    tracker = JobTracker(tmp_path)
    yield tracker
    tracker.cancel_all()
