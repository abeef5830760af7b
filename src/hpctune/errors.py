"""Exceptions that carry their own exit code and a one-line message for the command line."""

from __future__ import annotations


class HpctuneError(Exception):
    """Base of every error hpctune reports to a user: one line, an exit code, no traceback."""

    exit_code = 1


class SpecError(HpctuneError):
    """The job spec (or a ``--set`` override) is invalid. ``key`` is the dotted key at fault."""

    exit_code = 2

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class DataError(HpctuneError):
    """The dataset does not fit the spec (missing variable, wrong dims, no file ...)."""

    exit_code = 2

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class UsageError(HpctuneError):
    """A command was used in a way that cannot work (e.g. mixing results of another spec)."""

    exit_code = 2


class OutputError(HpctuneError):
    """The output folder cannot be used: locked by another run, not writable, disk full."""

    exit_code = 1


class SchedulerError(HpctuneError):
    """A scheduler command failed; the message shows the command, exit code and output."""

    exit_code = 1

    def __init__(
        self, command: list[str], returncode: int | None, stdout: str = "", stderr: str = ""
    ) -> None:
        self.command = command
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        shown = " ".join(command)
        detail = (stderr or stdout).strip().replace("\n", " | ")
        code = "not found" if returncode is None else f"exit code {returncode}"
        super().__init__(f"command failed ({code}): {shown}" + (f": {detail}" if detail else ""))


class TemplateError(UsageError):
    """A template is missing, malformed, or uses a variable that does not exist."""


class ClusterError(HpctuneError):
    """The cluster could not start (no workers, no allocation, a launcher that failed)."""


class AllocationError(ClusterError):
    """The allocation cannot host the cluster the spec asks for."""


class RunStopped(HpctuneError):
    """The run was stopped (a signal) while a search waited for its tasks, or the driver for
    a batch the scheduler computes again."""


class ModelError(HpctuneError):
    """A model file is missing, damaged, or asks for types that are not trusted."""

    exit_code = 1


class UntrustedModelError(ModelError):
    """A model file asks for types that are not trusted: refused before anything in it is
    rebuilt, as bad input (the user decides whether to trust them)."""

    exit_code = 2


def holds_other_spec(output: object, changed: list[str]) -> str:
    """``<output> holds results of a different spec (changed: key, ...)``, five keys at most."""
    more = f", and {len(changed) - 5} more" if len(changed) > 5 else ""
    return f"{output} holds results of a different spec (changed: {', '.join(changed[:5])}{more})"


class HpctuneWarning(UserWarning):
    """Base of hpctune's warnings (``warnings.warn``); the command line prints each as one
    ``hpctune: warning: ...`` line on stderr."""


class SpecChangedWarning(HpctuneWarning):
    """The output folder holds results of a spec that differs from this one in keys that decide
    results: what is shown (``status``, ``report``, ``results``) is that spec's results.
    ``changed`` lists the dotted keys."""

    def __init__(self, output: str, changed: list[str]) -> None:
        self.output = output
        self.changed = list(changed)
        super().__init__(
            f"{holds_other_spec(output, self.changed)}: shown are that spec's results, not this "
            "one's (hpctune run --restart computes this spec's)"
        )
