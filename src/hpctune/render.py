"""Job scripts: Jinja2 templates found in a few folders, rendered from a validated job.

Templates are looked up, first match wins, in:

1. the ``--template-dir`` folders given to the command,
2. the folders in ``HPCTUNE_TEMPLATE_DIR`` (separated by ``:``),
3. the user's config folder, ``$XDG_CONFIG_HOME/hpctune/templates``
   (``~/.config/hpctune/templates``),
4. the templates shipped with hpctune.

The shipped templates are also reachable as ``hpctune/<name>``, so that a site template named
``slurm.sh.j2`` can extend the one it replaces: ``{% extends "hpctune/slurm.sh.j2" %}``.

Rendering is a pure function of the job (:func:`render_script`): the same spec gives the same
script. Every value it receives was validated by :mod:`hpctune.spec`; here the values that end up
on a command line are shell-quoted (the ``quote`` filter) and the paths that end up in a
scheduler directive are checked for characters a directive cannot carry.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2

from .errors import SpecError, TemplateError, UsageError
from .schedulers.pbs import pbs_memory, pbs_time
from .schedulers.registry import KINDS, filters, get_scheduler
from .schedulers.slurm import MAX_REQUEUES, slurm_memory, slurm_time
from .spec import Job

Step = Literal["run", "merge"]

TEMPLATE_ENV = "HPCTUNE_TEMPLATE_DIR"
PACKAGE_PREFIX = "hpctune"

DIRECTIVE_PATH = re.compile(r"^[A-Za-z0-9._/+,@=:~-]+$")
"""Characters a path may hold where it goes into a scheduler directive (``#SBATCH`` ...), which
is not read by a shell: no spaces, quotes, ``$``, ``%`` or ``#``."""


# --------------------------------------------------------------------------- lookup


def package_template_dir() -> Path:
    """The templates shipped with hpctune (inside the wheel, or ``templates/`` of a checkout)."""
    inside = Path(__file__).resolve().parent / "templates"
    if (inside / "base.sh.j2").is_file():
        return inside
    return Path(__file__).resolve().parents[2] / "templates"


def user_template_dir() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "hpctune" / "templates"


def template_dirs(template_dir: str | Path | Sequence[str | Path] | None = None) -> list[Path]:
    """The folders searched for templates, in order (the package's last)."""
    given: list[str | Path]
    if template_dir is None:
        given = []
    elif isinstance(template_dir, str | Path):
        given = [template_dir]
    else:
        given = list(template_dir)
    folders = [Path(d).expanduser() for d in given]
    for folder in folders:
        if not folder.is_dir():
            raise TemplateError(f"--template-dir: no such folder: {folder}")
    env_value = os.environ.get(TEMPLATE_ENV, "")
    folders += [Path(d).expanduser() for d in env_value.split(os.pathsep) if d.strip()]
    folders.append(user_template_dir())
    folders.append(package_template_dir())
    return folders


def environment(folders: Iterable[Path]) -> jinja2.Environment:
    """A Jinja2 environment over ``folders`` (plus ``hpctune/`` for the shipped templates)."""
    package = jinja2.FileSystemLoader(str(package_template_dir()))
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader([str(f) for f in folders]),
            jinja2.PrefixLoader({PACKAGE_PREFIX: package}),
        ]
    )
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(quote=quote, **filters())
    return env


# --------------------------------------------------------------------------- filters


def quote(value: Any) -> str:
    """One shell word: ``shlex.quote`` of the value's text."""
    return shlex.quote(str(value))


# --------------------------------------------------------------------------- context


@dataclass(frozen=True)
class ArrayPart:
    """One array job of a submission: its task ``t`` runs slice ``offset + t`` of ``slices``.

    A part of a single task is rendered as a plain job with a fixed ``--slice`` (PBS Pro refuses
    arrays of one subjob).
    """

    offset: int
    size: int
    slices: int

    @property
    def last(self) -> int:
        return self.offset + self.size - 1

    @property
    def is_array(self) -> bool:
        return self.size > 1


def template_name(kind: str) -> str:
    """The template of scheduler ``kind`` (its ``template``: ``<kind>.sh.j2``)."""
    return get_scheduler(kind).template


def _directive_path(path: str, key: str) -> str:
    if not DIRECTIVE_PATH.match(path):
        raise SpecError(
            key,
            f"the folder {path!r} goes into a scheduler directive, where spaces, quotes and "
            "$%# do not work; set scheduler.log_dir to a path of letters, digits and ._-/+",
        )
    return path


def _check_arguments(overrides: Iterable[str]) -> list[str]:
    checked = []
    for override in overrides:
        if any(ch in override for ch in "\n\r\x00"):
            raise SpecError("--set", f"must be a single line; got {override!r}")
        checked.append(override)
    return checked


def script_context(
    job: Job,
    *,
    kind: str | None = None,
    step: Step = "run",
    array: ArrayPart | None = None,
    overrides: Iterable[str] = (),
    relative_to: str | Path | None = None,
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """The variables a template sees (documented in the README).

    Paths are absolute, except with ``relative_to``: then they are relative to that folder, and
    the script changes to the folder it was submitted from (the template's ``submit_dir``, e.g.
    ``$SLURM_SUBMIT_DIR``), so that a script is the same on every machine. ``workdir``
    (absolute mode only) is the folder the script changes to; default the current folder.
    """
    kind = kind or job.scheduler.kind
    if kind not in KINDS:
        raise SpecError("scheduler.kind", f"must be one of {', '.join(KINDS)}; got {kind!r}")
    if job.spec_path is None:
        raise UsageError("a job script needs a spec file to run; this job was not read from one")
    sched = job.scheduler

    if relative_to is not None:
        base = Path(relative_to).resolve()

        def path(p: str | Path) -> str:
            return os.path.relpath(Path(p), base)

        cd = None
    else:

        def path(p: str | Path) -> str:
            return str(Path(p))

        cd = str(Path(workdir).resolve() if workdir else Path.cwd())

    spec = path(job.spec_path)
    if any(ch in spec for ch in "\n\r\x00"):
        raise SpecError("spec", f"the spec path must be a single line; got {spec!r}")
    log_dir = _directive_path(path(job.log_dir), "scheduler.log_dir")
    merge = step == "merge"
    return {
        "name": job.name,
        "job_name": f"{job.name}-merge" if merge else job.name,
        "scheduler": kind,
        "step": step,
        "spec": spec,
        "overrides": _check_arguments(overrides),
        "hpctune": "hpctune",
        "workdir": cd,
        "nodes": 1 if merge else sched.nodes,
        "cores_per_node": 1 if merge else sched.cores_per_node,
        "memory": sched.memory,
        "walltime": sched.walltime,
        "grace": 0 if merge else sched.grace,
        "queue": sched.queue,
        "account": sched.account,
        "setup": list(sched.setup),
        "extra": list(sched.extra),
        "env": dict(sched.env),
        "log_dir": log_dir,
        "array": array,
        **get_scheduler(kind).template_variables,
    }


# --------------------------------------------------------------------------- rendering


def render_template(name: str, context: Mapping[str, Any], template_dir: Any = None) -> str:
    """Render template ``name`` found in :func:`template_dirs` with ``context``."""
    folders = template_dirs(template_dir)
    env = environment(folders)
    where = template_dirs_text(folders)
    try:
        template = env.get_template(name)
        return template.render(**context)
    except jinja2.TemplateNotFound as exc:
        needed = f" (needed by {name})" if exc.name != name else ""
        raise TemplateError(f"template {exc.name!r}{needed} not found in: {where}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}"
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template {name}: {exc.message} (variables: {', '.join(context)})"
        ) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {name}: {exc}") from None


def template_dirs_text(folders: Iterable[Path]) -> str:
    return ", ".join(str(f) for f in folders) + f", {PACKAGE_PREFIX}/ (the shipped ones)"


def render_script(
    job: Job,
    *,
    kind: str | None = None,
    step: Step = "run",
    array: ArrayPart | None = None,
    overrides: Iterable[str] = (),
    relative_to: str | Path | None = None,
    workdir: str | Path | None = None,
    template_dir: Any = None,
) -> str:
    """The job script that runs (``step="run"``) or merges (``"merge"``) ``job``.

    A pure function of its arguments and the template files: nothing is written or submitted.
    """
    context = script_context(
        job,
        kind=kind,
        step=step,
        array=array,
        overrides=overrides,
        relative_to=relative_to,
        workdir=workdir,
    )
    return render_template(template_name(context["scheduler"]), context, template_dir)


__all__ = [
    "KINDS",
    "MAX_REQUEUES",
    "ArrayPart",
    "TemplateError",
    "pbs_memory",
    "pbs_time",
    "render_script",
    "render_template",
    "script_context",
    "slurm_memory",
    "slurm_time",
    "template_dirs",
    "template_name",
]
