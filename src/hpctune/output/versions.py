"""The versions of hpctune and its scientific stack, written into the manifest and results.nc."""

from __future__ import annotations


def versions() -> dict[str, str]:
    """Package -> installed version (``unknown`` when not installed): results say what made them."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("hpctune", "dask", "distributed", "dask-ml", "scikit-learn", "xarray", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found
