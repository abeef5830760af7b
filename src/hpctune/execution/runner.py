"""What every runner of a run's partitions shares."""

from __future__ import annotations

import logging
import threading

import numpy as np

from ..cluster import (
    ClusterHandle,
    ExecutionPlan,
)
from ..progress import Counts, Progress
from .tasks import (
    TaskContext,
)

log = logging.getLogger("hpctune")


POLL_SECONDS = 0.5
"""How long the driver waits on the cluster before it looks at the stop event again."""


class Runner:
    """Computes the partitions ``todo`` of a run on a cluster, counting what finishes into
    ``counts`` and showing it on ``progress``, until done or ``stop`` is set; its tasks at once
    follow ``execution`` (the run's plan: its slots, threads or processes)."""

    def __init__(
        self,
        handle: ClusterHandle,
        ctx: TaskContext,
        todo: np.ndarray,
        counts: Counts,
        progress: Progress,
        stop: threading.Event,
        execution: ExecutionPlan,
    ) -> None:
        self.handle = handle
        self.execution = execution
        self.client = handle.client
        self.ctx = ctx
        self.todo = [int(i) for i in todo]
        self.counts = counts
        self.progress = progress
        self.stop = stop
        self.setup()

    def setup(self) -> None:
        """The runner's own state, made at the end of the constructor."""

    def run(self) -> None:
        """Compute ``todo`` on the cluster, recording each partition as it ends, until done or
        ``stop`` is set."""
        raise NotImplementedError
