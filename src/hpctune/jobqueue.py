"""``cluster.mode: jobqueue`` lives in :mod:`hpctune.cluster.jobqueue`; its names stay importable
from here until their importers use the new path."""

from .cluster.jobqueue import (
    SHIPPED_JOB_NAME,
    JobqueuePlan,
    build,
    import_dask_jobqueue,
    jobqueue_cluster,
    lifetime,
    parse_walltime_text,
    plan,
)

__all__ = [
    "SHIPPED_JOB_NAME",
    "JobqueuePlan",
    "build",
    "import_dask_jobqueue",
    "jobqueue_cluster",
    "lifetime",
    "parse_walltime_text",
    "plan",
]
