"""The search in a child process, now :mod:`hpctune.search.sandbox`; names stay importable."""

from __future__ import annotations

from .search.sandbox import CHILD, LENGTH, SearchProcess, main

__all__ = ["CHILD", "LENGTH", "SearchProcess", "main"]
