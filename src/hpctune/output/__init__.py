"""The output folder and what is written into it.

``record`` is the schema of one partition's result, ``journal`` the append-only logs of
records, ``files`` atomic writes and the file lock, ``folder`` the output folder itself
(:class:`Store`), ``dataset`` results.nc, ``status`` the tally of statuses, ``versions`` the
package versions written beside results.
"""
