"""A Dask worker on an allocated node: ``python -m hpctune.worker ADDRESS [dask worker options]``.

The launchers (``srun``, ``pbsdsh``, ``mpiexec`` ...) run the same command on every node; what only
the node itself knows is filled in here, before ``dask worker`` starts:

- spill files go to the node's local scratch (``$SLURM_TMPDIR`` ..., else ``$TMPDIR``), not to the
  shared filesystem the driver runs from;
- the worker is named after its node (and its launcher task), which is what logs and the dashboard
  show;
- the nanny starts its worker process with glibc's own memory thresholds
  (:data:`hpctune.cluster.WORKER_CONFIG`);
- with ``--nworkers`` above 1, the node's workers are forked from one process that imported
  scikit-learn and dask-ml once (:mod:`hpctune.cluster.forkserver`);
- what estimators print, from Python or C, goes to stderr, not to the standard output the
  launcher or the batch system collects (:mod:`hpctune.streams`).

dask-jobqueue's worker jobs run it too (its ``worker_command``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .cluster import WORKER_CONFIG, node_name, scratch_dir
from .schedulers.registry import task_variables


def _has_option(args: Sequence[str], name: str) -> bool:
    return any(arg == name or arg.startswith(name + "=") for arg in args)


def worker_args(args: Sequence[str]) -> list[str]:
    """``args`` with the node's scratch folder and a worker name added, unless given."""
    out = list(args)
    if not _has_option(out, "--local-directory"):
        scratch = scratch_dir()
        if scratch:
            out += ["--local-directory", scratch]
    if not _has_option(out, "--name"):
        task = next((os.environ[v] for v in task_variables() if os.environ.get(v)), None)
        out += ["--name", node_name() + (f"-{task}" if task else "")]
    return out


def nworkers(args: Sequence[str]) -> int:
    """The value of ``--nworkers`` (1 when absent or not a number: dask worker checks it)."""
    for i, arg in enumerate(args):
        value = arg.partition("=")[2] if arg.startswith("--nworkers=") else None
        if arg == "--nworkers" and i + 1 < len(args):
            value = args[i + 1]
        if value is not None:
            return int(value) if value.isdigit() else 1
    return 1


def main(argv: Sequence[str] | None = None) -> None:
    """``dask worker`` with hpctune's worker settings, estimators' output kept off stdout, and
    ``--nworkers N`` forked from one preloaded process (the imports paid once per node)."""
    import dask
    from distributed.cli.dask_worker import main as dask_worker

    from . import streams
    from .cluster import forkserver

    streams.estimators_to_stderr()  # inherited by the nanny's worker processes
    args = worker_args(sys.argv[1:] if argv is None else argv)
    dask.config.set(WORKER_CONFIG)
    if nworkers(args) > 1 and forkserver.start(forkserver.worker_modules()):
        dask.config.set(forkserver.CONFIG)
    dask_worker.main(args=args, prog_name="hpctune.worker")


if __name__ == "__main__":
    main()
