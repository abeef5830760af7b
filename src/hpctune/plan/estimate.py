"""The estimate of ``hpctune plan``: the resources a run gets (:func:`resources`) and, from the
timed sample, its core-hours, wall time, walltime and nodes (:class:`PlanEstimate`, with the
arithmetic shown line by line)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cluster import local_cores, local_layout
from ..spec import Job, SchedulerSpec
from ..units import clock, hms, size_text

EFFICIENCY = 0.8
"""Share of the slots' time spent in searches over a whole run: the rest goes to scheduling,
reading, writing results and the last, partly idle round of partitions."""

MARGIN = 1.5
"""Suggested walltime = expected wall time x MARGIN (+ grace): nodes differ, queues share them."""

ROUND_TO = 300
"""Walltimes are rounded up to whole 5 minutes."""

BUSY_SHARE = 0.6
"""Below this share of CPU in the sampled searches' wall time, the plan says the machine that
timed them was busy (other processes took the cores): the estimate is then on the high side."""


@dataclass
class Resources:
    """What the run will have: from scheduler (nodes, cores) and cluster (workers, threads)."""

    nodes: int
    cores_per_node: int
    workers_per_node: int
    threads: int
    memory_per_node: int | None
    walltime: int
    grace: int
    source: str
    """Where the numbers come from: the spec's scheduler section, or this machine."""
    scheduled: bool = True
    """False for a local run without a scheduler section (no walltime to compare with)."""

    @property
    def slots_per_node(self) -> int:
        return self.workers_per_node * self.threads

    @property
    def slots(self) -> int:
        return self.nodes * self.slots_per_node


def resources(job: Job, mode: str) -> Resources:
    """The run's resources in ``mode``: the spec's ``scheduler`` section if it has one, else (a
    local run without one) this machine's cores."""
    threads = job.cluster.threads
    local = job.scheduler == SchedulerSpec() and mode == "local"
    if local:
        cores = local_cores(job)
        nodes, source = 1, "this machine (the spec has no scheduler section)"
    elif mode == "jobqueue":
        cores = job.scheduler.cores_per_node
        adaptive = job.cluster.adaptive
        nodes = adaptive.maximum if adaptive is not None else job.cluster.jobs
        source = "cluster.jobs worker jobs (one node each) x scheduler.cores_per_node"
    else:
        cores = job.scheduler.cores_per_node
        nodes, source = job.scheduler.nodes, "scheduler.nodes x scheduler.cores_per_node"
    workers = local_layout(job)[0] if local else job.cluster.workers or max(1, cores // threads)
    return Resources(
        nodes=nodes,
        cores_per_node=cores,
        workers_per_node=workers,
        threads=threads,
        memory_per_node=job.scheduler.memory,
        walltime=job.scheduler.walltime,
        grace=job.scheduler.grace if not local else 0,
        source=source,
        scheduled=not local,
    )


@dataclass
class PlanEstimate:
    """The sample's measurements and the estimate for the whole run."""

    name: str
    partitions: int
    fits_per_partition: int | None
    sample: list[dict[str, Any]] = field(repr=False)
    resources: Resources
    startup_seconds: float
    """Measured: preparing the run (data metadata), starting the sampling cluster and warming
    its workers (imports, open files); with a given client, preparing only."""
    measured_on: str
    target_walltime: int
    granularity: str = "partition"
    """How the run would spread its work (:func:`hpctune.cluster.choose_granularity`)."""
    workers: str = "processes"
    """What the run's workers would be: ``processes``, or ``threads`` of the hpctune process
    (:func:`hpctune.cluster.plan_execution`)."""
    halving: dict[str, Any] | None = None
    """A halving search's estimated iterations and fits (:func:`search.halving.plan_estimate`)."""
    targets: dict[str, Any] | None = None
    """Several targets: how one model predicts them (:func:`search.targets.describe_targets`)."""
    lines: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ sample statistics

    @property
    def seconds(self) -> np.ndarray:
        return np.array([s["seconds"] for s in self.sample], dtype=float)

    @property
    def mean_seconds(self) -> float:
        return float(self.seconds.mean())

    @property
    def p95_seconds(self) -> float:
        return float(np.percentile(self.seconds, 95))

    @property
    def max_seconds(self) -> float:
        return float(self.seconds.max())

    @property
    def mean_cpu_seconds(self) -> float:
        return float(np.mean([s["cpu_seconds"] for s in self.sample]))

    @property
    def peak_memory(self) -> int:
        """The largest peak resident memory of a sampling worker (bytes)."""
        return int(max(s["peak_rss"] for s in self.sample))

    # ------------------------------------------------------------------ the run

    @property
    def core_seconds(self) -> float:
        return self.partitions * self.mean_seconds

    @property
    def core_hours(self) -> float:
        return self.core_seconds / 3600

    @property
    def compute_seconds(self) -> float:
        return self.core_seconds / (self.resources.slots * EFFICIENCY)

    @property
    def wall_seconds(self) -> float:
        """Expected wall time of the whole run on the resources."""
        floor = self.max_seconds if self.granularity == "partition" else 0.0
        return self.startup_seconds + max(self.compute_seconds, floor)

    @property
    def suggested_walltime(self) -> int:
        seconds = self.wall_seconds * MARGIN + self.resources.grace
        return int(math.ceil(seconds / ROUND_TO) * ROUND_TO)

    @property
    def nodes_for_target(self) -> int | None:
        """Nodes to finish within ``target_walltime``; None if even many nodes cannot."""
        usable = self.target_walltime / MARGIN - self.startup_seconds - self.resources.grace
        if usable <= 0 or usable < self.max_seconds:
            return None
        per_node = self.resources.slots_per_node * EFFICIENCY * usable
        return max(1, math.ceil(self.core_seconds / per_node))

    def __post_init__(self) -> None:
        self.lines = self._arithmetic()

    def _arithmetic(self) -> list[str]:
        r = self.resources
        n = self.partitions
        k = len(self.sample)
        statuses = {s: sum(1 for x in self.sample if x["status"] == s) for s in ("ok", "skipped")}
        failed = k - statuses["ok"] - statuses["skipped"]
        fits = (
            f"{'about ' if self.halving else ''}{self.fits_per_partition} fits per partition, "
            f"{self.fits_per_partition * n} fits"
            if self.fits_per_partition
            else "fits per partition depend on the years of each partition"
        )
        lines = [
            f"partitions      {n} ({fits})",
            f"sample          {k} partitions (seeded), timed on {self.measured_on}: "
            f"{statuses['ok']} ok, {statuses['skipped']} skipped, {failed} failed",
            f"per partition   mean {self.mean_seconds:.3f} s, p95 {self.p95_seconds:.3f} s, "
            f"max {self.max_seconds:.3f} s on one slot (CPU mean {self.mean_cpu_seconds:.3f} s)",
            f"core-hours      {n} x {self.mean_seconds:.3f} s = {self.core_seconds:.1f} s "
            f"= {self.core_hours:.3g} core-hours",
            f"slots           {r.nodes} nodes x {r.workers_per_node} workers x {r.threads} "
            f"threads = {r.slots} ({r.source})",
            *([self.halving["line"]] if self.halving else []),
            *([f"targets         {self.targets['line']}"] if self.targets else []),
            f"layout          {self._layout()}",
            f"compute         {self.core_seconds:.1f} s / ({r.slots} slots x {EFFICIENCY} "
            f"efficiency) = {self.compute_seconds:.1f} s",
        ]
        floor = ""
        if self.granularity == "partition" and self.max_seconds > self.compute_seconds:
            floor = f" (the longest partition, {self.max_seconds:.1f} s, is the floor)"
        lines.append(
            f"wall time       {self.startup_seconds:.1f} s startup + "
            f"{max(self.compute_seconds, 0):.1f} s = {self.wall_seconds:.1f} s "
            f"({clock(self.wall_seconds)}){floor}"
        )
        grace = f" + {r.grace} s grace" if r.grace else ""
        verdict = "enough" if self.suggested_walltime <= r.walltime else "too short"
        lines.append(
            f"walltime        {self.wall_seconds:.1f} s x {MARGIN} margin{grace}, rounded up "
            f"to 5 min = {hms(self.suggested_walltime)}"
            + (f" (scheduler.walltime {hms(r.walltime)}: {verdict})" if r.scheduled else "")
        )
        usable = self.target_walltime / MARGIN - self.startup_seconds - r.grace
        nodes = self.nodes_for_target
        if nodes is None:
            lines.append(
                f"nodes           none fits {hms(self.target_walltime)}: {usable:.0f} s usable "
                f"after margin and startup, the longest partition takes {self.max_seconds:.0f} s"
            )
        else:
            lines.append(
                f"nodes           {self.core_seconds:.1f} s / ({r.slots_per_node} slots x "
                f"{EFFICIENCY} x ({hms(self.target_walltime)} / {MARGIN} - "
                f"{self.startup_seconds + r.grace:.0f} s)) = {nodes} node(s) for a walltime of "
                f"{hms(self.target_walltime)}"
            )
        busy = self.mean_cpu_seconds / self.mean_seconds if self.mean_seconds > 0 else 1.0
        if busy < BUSY_SHARE:
            lines.append(
                f"note            the sampled searches had {busy:.0%} of a core (CPU / wall "
                "seconds): the machine that timed them was busy, so the estimate is high"
            )
        peak = self.peak_memory
        if self.workers == "threads":  # one process holds the imports, the data and every fit
            need = peak
            memory = f"memory          peak {size_text(peak)} in the one hpctune process"
        else:
            need = peak * r.workers_per_node
            memory = (
                f"memory          peak {size_text(peak)} per worker x {r.workers_per_node} "
                f"workers = {size_text(need)} per node"
            )
        if r.memory_per_node:
            verdict = "fits" if need <= r.memory_per_node else "does NOT fit"
            memory += f"; scheduler.memory {size_text(r.memory_per_node)}: {verdict}"
        lines.append(memory)
        return lines

    def _layout(self) -> str:
        if self.granularity == "partition":
            return "each partition's whole search is a task, on worker processes"
        where = (
            "threads of the hpctune process (every step of the estimator releases the GIL)"
            if self.workers == "threads"
            else "worker processes"
        )
        return f"few partitions: each fit and score of a search is a task, on {where}"

    def text(self) -> str:
        return f"{self.name}: plan\n" + "\n".join(f"  {line}" for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        r = self.resources
        return {
            "name": self.name,
            "partitions": self.partitions,
            "fits_per_partition": self.fits_per_partition,
            "fits": None
            if self.fits_per_partition is None
            else self.fits_per_partition * self.partitions,
            "sample": {
                "size": len(self.sample),
                "indices": [s["index"] for s in self.sample],
                "statuses": [s["status"] for s in self.sample],
                "measured_on": self.measured_on,
            },
            "seconds_per_partition": {
                "mean": self.mean_seconds,
                "p95": self.p95_seconds,
                "max": self.max_seconds,
                "cpu_mean": self.mean_cpu_seconds,
            },
            "peak_memory_per_worker": self.peak_memory,
            "core_hours": self.core_hours,
            "resources": {
                "nodes": r.nodes,
                "cores_per_node": r.cores_per_node,
                "workers_per_node": r.workers_per_node,
                "threads": r.threads,
                "slots": r.slots,
                "memory_per_node": r.memory_per_node,
                "source": r.source,
            },
            "efficiency": EFFICIENCY,
            "margin": MARGIN,
            "startup_seconds": self.startup_seconds,
            "granularity": self.granularity,
            "workers": self.workers,
            "wall_seconds": self.wall_seconds,
            "suggested_walltime": hms(self.suggested_walltime),
            "suggested_walltime_seconds": self.suggested_walltime,
            "walltime": hms(r.walltime),
            "target_walltime": hms(self.target_walltime),
            "nodes_for_target": self.nodes_for_target,
            "lines": self.lines,
            **({"halving": self.halving} if self.halving else {}),
            **({"targets": self.targets} if self.targets else {}),
        }
