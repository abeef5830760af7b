"""``python -m hpctune``: the command line, as the ``hpctune`` script runs it (for a Python
whose scripts folder is not on PATH, e.g. in a job script)."""

from .cli.app import main

main()
