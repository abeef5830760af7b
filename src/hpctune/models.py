"""Model files, now :mod:`hpctune.search.model_file`; these names stay importable here."""

from __future__ import annotations

from .search.model_file import (
    check_model_file,
    load_model,
    load_model_file,
    model_path,
    trusted_types,
)

__all__ = ["check_model_file", "load_model", "load_model_file", "model_path", "trusted_types"]
