"""A Dask worker on an allocated node: ``python -m hpctune.worker ADDRESS [dask worker options]``.

The launchers (``srun``, ``pbsdsh``, ``mpiexec``) run the same command on every node; what only
the node itself knows is filled in here, before ``dask worker`` starts:

- spill files go to the node's local scratch (``$SLURM_TMPDIR``, else ``$TMPDIR``), not to the
  shared filesystem the driver runs from;
- the worker is named after its node (and its SLURM task), which is what logs and the dashboard
  show;
- the nanny starts its worker process with glibc's own memory thresholds
  (:data:`hpctune.cluster.WORKER_CONFIG`).

dask-jobqueue's worker jobs run it too (its ``worker_command``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .cluster import WORKER_CONFIG, node_name, scratch_dir


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
        task = os.environ.get("SLURM_PROCID")
        out += ["--name", node_name() + (f"-{task}" if task else "")]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    import dask
    from distributed.cli.dask_worker import main as dask_worker

    args = worker_args(sys.argv[1:] if argv is None else argv)
    dask.config.set(WORKER_CONFIG)
    dask_worker.main(args=args, prog_name="hpctune.worker")


if __name__ == "__main__":
    main()
