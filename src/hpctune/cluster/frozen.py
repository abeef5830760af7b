"""Imported last by the forkserver (:mod:`hpctune.cluster.forkserver`): it collects the
garbage and freezes every object the server holds, so that workers forked from it share them.

A forked worker shares its parent's memory pages until it writes to them, and Python's cyclic
garbage collector writes to every object it examines (the collection flags in each object's
header). Without a freeze, a worker's first full collection walks the tens of thousands of
objects scikit-learn, scipy, pandas and dask imported in the server and copies the pages that
hold them. ``gc.freeze()`` moves them to a generation the collector never examines (the
mechanism Python documents for pre-fork servers). Measured on the tiny search, 2 forked workers:
about 40-50 MiB less PSS per worker (benchmarks/RESULTS.md, "Memory").

The forkserver has no other hook than importing modules, hence a module that acts on import.
"""

import gc

gc.collect()
gc.freeze()
