"""hpctune: one hyper-parameter search per grid cell of NetCDF data, on SLURM, PBS or a laptop."""

from importlib.metadata import PackageNotFoundError, version

# Modules named like API functions are imported first, so that the package's attributes are
# the functions (hpctune.report(...)), not the modules.
from . import plan as _plan_module  # noqa: F401
from . import predict as _predict_module  # noqa: F401
from .api import (
    cancel,
    load_model,
    location,
    merge,
    plan,
    predict,
    prediction,
    report,
    results,
    run,
    status,
    submit,
    validate,
)
from .errors import (
    DataError,
    HpctuneError,
    HpctuneWarning,
    OutputError,
    SchedulerError,
    SpecChangedWarning,
    SpecError,
    UsageError,
)
from .spec import Job, load_spec

try:
    __version__ = version("hpctune")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [
    "DataError",
    "HpctuneError",
    "HpctuneWarning",
    "Job",
    "OutputError",
    "SchedulerError",
    "SpecChangedWarning",
    "SpecError",
    "UsageError",
    "__version__",
    "cancel",
    "load_model",
    "load_spec",
    "location",
    "merge",
    "plan",
    "predict",
    "prediction",
    "report",
    "results",
    "run",
    "status",
    "submit",
    "validate",
]
