"""The xarray engines ``data.engine`` may name, and which of them are installed here.

An engine is installed when the package that backs it can be imported; the check finds the
package without importing it, so a spec is validated as quickly with Zarr as without.
"""

from __future__ import annotations

import importlib.util

ENGINES = {"netcdf4": "netCDF4", "h5netcdf": "h5netcdf", "zarr": "zarr"}
"""Engine name -> the package it needs. NetCDF's two come with hpctune; ``zarr`` is the
optional extra ``pip install 'hpctune[zarr]'``."""

EXTRAS = {"zarr": "pip install 'hpctune[zarr]'"}
"""How to install an engine that is not installed by default."""


def installed_engines() -> list[str]:
    """The engines of :data:`ENGINES` whose package is installed, in that order."""
    return [name for name, package in ENGINES.items() if _importable(package)]


def _importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def check_engine(value: str | None) -> str | None:
    """``value`` if it is an installed engine (or None: chosen from the paths); the error
    lists the engines installed here, and how to install a known one that is not."""
    if value is None:
        return value
    installed = installed_engines()
    if value in installed:
        return value
    listed = ", ".join(installed) or "(none)"
    hint = f" ({value} needs {EXTRAS[value]})" if value in EXTRAS else ""
    raise ValueError(f"{value!r} is not an engine installed here: {listed}{hint}")
