"""The scripts of one submission, rendered but not yet written or submitted: one script that
runs the whole job, or arrays of at most the site's size plus a merge job that waits for them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..schedulers.jobs import Dependency
from ..spec import Job
from .render import ArrayPart, render_script


@dataclass
class JobScript:
    """One script of a submission, before it is submitted."""

    role: str
    """``run`` (the whole job), ``array`` (a block of slices) or ``merge``."""
    script: str
    path: Path
    array: ArrayPart | None = None
    after: list[Dependency] = field(default_factory=list)
    waits_for: list[int] = field(default_factory=list)
    """Indices of earlier jobs of this submission that it waits for (``afterany``)."""


def array_parts(slices: int, max_size: int | None) -> list[ArrayPart]:
    """``slices`` array tasks as arrays of at most ``max_size`` tasks, each indexed from 0."""
    if slices < 1:
        raise UsageError(f"--array must be at least 1; got {slices}")
    step = slices if not max_size or max_size < 1 else max_size
    return [
        ArrayPart(offset=offset, size=min(step, slices - offset), slices=slices)
        for offset in range(0, slices, step)
    ]


def submission_scripts(
    job: Job,
    overrides: Sequence[str] = (),
    *,
    submission: int = 1,
    array: int | None = None,
    max_array: int | None = None,
    after: Sequence[Dependency] = (),
    template_dir: Any = None,
    workdir: str | Path | None = None,
) -> list[JobScript]:
    """The scripts of one submission, rendered (a pure function: nothing is written)."""
    stem = f"{job.name}.{submission}"
    log_dir = job.log_dir

    def render(step: str, part: ArrayPart | None = None) -> str:
        return render_script(
            job,
            step=step,  # type: ignore[arg-type]
            array=part,
            overrides=overrides,
            workdir=workdir,
            template_dir=template_dir,
        )

    if array is None:
        return [JobScript("run", render("run"), log_dir / f"{stem}.run.sh", after=list(after))]
    parts = array_parts(array, max_array)
    scripts = [
        JobScript(
            "array",
            render("run", part),
            log_dir / (f"{stem}.array{k}.sh" if len(parts) > 1 else f"{stem}.array.sh"),
            array=part,
            after=list(after),
        )
        for k, part in enumerate(parts)
    ]
    scripts.append(
        JobScript(
            "merge",
            render("merge"),
            log_dir / f"{stem}.merge.sh",
            waits_for=list(range(len(parts))),
        )
    )
    return scripts
