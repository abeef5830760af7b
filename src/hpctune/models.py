"""Model files, now :mod:`hpctune.search.model_file`; these names stay importable here."""

from __future__ import annotations

from .search.model_file import load_model, load_model_file, model_path, trusted_types

__all__ = ["load_model", "load_model_file", "model_path", "trusted_types"]
