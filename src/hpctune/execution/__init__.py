"""Running a job: its checks, the worker tasks, the runners of each granularity, and the driver
that runs them in order (:mod:`~hpctune.execution.driver`)."""
