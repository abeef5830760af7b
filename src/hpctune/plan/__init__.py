"""``hpctune plan``: time a sample of partitions, then estimate the cost of the whole run.

The sample runs the way a run computes (worker processes of the job's cluster mode, BLAS
threads capped at one per worker by Dask's nanny, each search on one slot with the synchronous
scheduler, the model serialised as it would be written), but writes nothing. Each task reports
its wall and CPU seconds and its worker's peak resident memory.

The estimate, with the arithmetic shown line by line (:attr:`PlanEstimate.lines`)::

    core-seconds   = partitions x mean seconds per partition (one slot each)
    slots          = nodes x workers per node x threads per worker
    compute        = core-seconds / (slots x EFFICIENCY)
    wall           = startup + max(compute, longest sampled partition)
    walltime       = wall x MARGIN + scheduler.grace, rounded up to 5 minutes
    nodes(target)  = core-seconds / (slots per node x EFFICIENCY x (target / MARGIN - startup
                     - grace)), rounded up

It assumes the nodes of the run compute as fast per core as the workers that timed the sample.

:mod:`.sample` times the sample on the workers and drives the whole; :mod:`.estimate` turns it
into the figures.
"""

from .estimate import BUSY_SHARE, EFFICIENCY, MARGIN, ROUND_TO, PlanEstimate, Resources, resources
from .sample import DEFAULT_SAMPLE, plan, time_partition

__all__ = [
    "BUSY_SHARE",
    "DEFAULT_SAMPLE",
    "EFFICIENCY",
    "MARGIN",
    "ROUND_TO",
    "PlanEstimate",
    "Resources",
    "plan",
    "resources",
    "time_partition",
]
