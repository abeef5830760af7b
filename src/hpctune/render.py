"""Old path of :mod:`hpctune.submission.render`: job scripts are rendered there now."""

from .errors import TemplateError
from .schedulers.pbs import pbs_memory, pbs_time
from .schedulers.registry import KINDS
from .schedulers.slurm import MAX_REQUEUES, slurm_memory, slurm_time
from .submission.render import (
    DIRECTIVE_PATH,
    PACKAGE_PREFIX,
    TEMPLATE_ENV,
    ArrayPart,
    Step,
    environment,
    package_template_dir,
    quote,
    render_script,
    render_template,
    script_context,
    template_dirs,
    template_dirs_text,
    template_name,
    user_template_dir,
)

__all__ = [
    "DIRECTIVE_PATH",
    "KINDS",
    "MAX_REQUEUES",
    "PACKAGE_PREFIX",
    "TEMPLATE_ENV",
    "ArrayPart",
    "Step",
    "TemplateError",
    "environment",
    "package_template_dir",
    "pbs_memory",
    "pbs_time",
    "quote",
    "render_script",
    "render_template",
    "script_context",
    "slurm_memory",
    "slurm_time",
    "template_dirs",
    "template_dirs_text",
    "template_name",
    "user_template_dir",
]
