"""IBM Spectrum LSF: everything hpctune knows about it.

- Job scripts: ``#BSUB`` directives (``lsf.sh.j2``): ``-n`` slots with ``span[ptile=C]`` (C
  cores on each of the nodes), memory per slot as ``rusage[mem=...]``, ``-W`` in hours:minutes,
  ``-r`` (rerunnable), and the walltime warning as ``-wa USR1 -wt``. Arrays are
  ``-J "name[1-N]"``: LSF numbers elements from 1 (``$LSB_JOBINDEX``), hpctune's slices from 0.
  LSF keeps no restart count, so a job stopped at the walltime warning is not requeued: it
  keeps its finished partitions and the next submission resumes.
- ``bsub < script`` (the script on bsub's standard input, so that it reads the ``#BSUB``
  lines), job ids from ``Job <123> is submitted to queue <normal>.``, dependencies as
  ``-w "done(ID) && ended(ID)"``; states from ``bjobs -a -json -o FIELDS`` (``bjobs -a
  -noheader -o "FIELDS delimiter='|'"`` where ``-json`` is missing), ``bkill``, and
  ``MAX_JOB_ARRAY_SIZE`` from ``bparams -a``.
- Inside a job: ``LSB_JOBID``; its hosts, one line per slot, in ``$LSB_DJOB_HOSTFILE``, else
  ``LSB_MCPU_HOSTS`` (``hostA 4 hostB 4``), else ``LSB_HOSTS`` (one word per slot). Workers
  start with ``blaunch HOST`` per host, or ``mpiexec`` where it is missing.
- dask-jobqueue's ``LSFCluster`` (``project`` for the account, walltime in ``HH:MM``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import AllocationError
from ..units import whole_size
from .base import Allocation, JobqueueFlavour, Scheduler
from .commands import STDIN, bad_output, run_command
from .jobs import Dependency, JobState, summarise
from .launch import LaunchCommand, Launcher, Layout, MpiexecLauncher, WorkerSpec

#: LSF's job states (``bjobs`` STAT).
PHASE = {
    **dict.fromkeys(("PEND", "PSUSP", "WAIT"), "pending"),
    **dict.fromkeys(("RUN", "USUSP", "SSUSP", "PROV"), "running"),
    **dict.fromkeys(("DONE", "EXIT", "ZOMBI"), "done"),
    "UNKWN": "unknown",
}
SUBMITTED = re.compile(r"^Job <(\d+)> is submitted")
NOT_FOUND = re.compile(r"Job <(\d+)(?:\[\d+\])?> is not found")
MAX_ARRAY = re.compile(r"^\s*MAX_JOB_ARRAY_SIZE\s*=\s*(\d+)", re.MULTILINE)
#: ``submit --after`` types as ``bsub -w`` conditions.
CONDITION = {"after": "started", "afterany": "ended", "afterok": "done", "afternotok": "exit"}
FIELDS = "jobid jobindex stat exit_code pend_reason"
DELIMITER = "|"

#: Directives that hpctune writes itself from a spec key (or a submit option); ``-R`` is keyed
#: by its section (``-R span``, ``-R rusage``), which hpctune writes; other sections are free.
RESERVED_DIRECTIVES: dict[str, str] = {
    "-J": "name (and submit --array)",
    "-n": "scheduler.nodes and cores_per_node",
    "-R span": "scheduler.nodes and cores_per_node",
    "-R rusage": "scheduler.memory",
    "-W": "scheduler.walltime",
    "-q": "scheduler.queue",
    "-P": "scheduler.account",
    **dict.fromkeys(("-o", "-oo", "-e", "-eo"), "scheduler.log_dir"),
    "-wa": "scheduler.grace",
    "-wt": "scheduler.grace",
    "-w": "submit --after",
}


def lsf_time(seconds: int) -> str:
    """``H:MM`` (hours and minutes, rounded up to a whole minute), as ``-W`` and ``-wt`` read it."""
    minutes = -(-int(seconds) // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def lsf_memory(size: int) -> str:
    """``rusage[mem=...]`` value with its unit (whole GB or MB, powers of two, rounded up), so
    that the site's LSF_UNIT_FOR_LIMITS does not change what it means."""
    number, unit = whole_size(int(size), [("GB", 2**30), ("MB", 2**20)])
    return f"{number}{unit}"


FILTERS = {"lsf_time": lsf_time, "lsf_memory": lsf_memory}


def _records(text: str) -> list[dict[str, Any]]:
    """The RECORDS of a ``bjobs -json`` document (text around it, such as a warning, ignored)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON document")
    data = json.loads(text[start : end + 1])
    records = data.get("RECORDS", []) if isinstance(data, dict) else []
    return [r for r in records if isinstance(r, dict)]


def _task_of(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(job id, task key) of one bjobs record: ``ID`` for a plain job, ``ID[index]`` for an
    array element; None for a record of an unknown job."""
    job_id = str(record.get("JOBID") or "").strip()
    if not job_id:
        return None
    base, _, rest = job_id.partition("[")
    index = rest.rstrip("]") or str(record.get("JOBINDEX") or "0").strip()
    return base, base if index in ("", "0", "-") else f"{base}[{index}]"


def parse_bjobs_json(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """``bjobs -json -o FIELDS`` as {job id: {task: {FIELD: value}}} (an array element's task is
    ``ID[index]``; a job bjobs does not know is absent)."""
    jobs: dict[str, dict[str, dict[str, str]]] = {}
    for record in _records(text):
        found = _task_of(record)
        if found is None:
            continue
        job_id, task = found
        values = {str(k).upper(): str(v).strip() for k, v in record.items()}
        jobs.setdefault(job_id, {})[task] = values
    return jobs


def parse_bjobs_text(text: str, fields: str = FIELDS) -> dict[str, dict[str, dict[str, str]]]:
    """``bjobs -noheader -o "FIELDS delimiter='|'"`` in the form of :func:`parse_bjobs_json`;
    lines that are not records (``Job <99> is not found``) are skipped."""
    names = [name.upper() for name in fields.split()]
    jobs: dict[str, dict[str, dict[str, str]]] = {}
    for line in text.splitlines():
        parts = line.strip().split(DELIMITER)
        if len(parts) < len(names):
            continue
        # the last field (pend_reason) may hold the delimiter itself
        parts = [*parts[: len(names) - 1], DELIMITER.join(parts[len(names) - 1 :])]
        values = ["" if v.strip() == "-" else v.strip() for v in parts]
        record = dict(zip(names, values, strict=True))
        found = _task_of(record)
        if found is not None and found[0].isdigit():
            jobs.setdefault(found[0], {})[found[1]] = record
    return jobs


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _hosts(env: Mapping[str, str]) -> list[str]:
    """The job's hosts, one entry per slot, in LSF's order."""
    hostfile = env.get("LSB_DJOB_HOSTFILE")
    if hostfile:
        try:
            return [
                line.strip() for line in Path(hostfile).read_text().splitlines() if line.strip()
            ]
        except OSError as exc:
            raise AllocationError(f"cannot read LSB_DJOB_HOSTFILE {hostfile}: {exc}") from None
    words = (env.get("LSB_MCPU_HOSTS") or "").split()
    if words:
        if len(words) % 2 or not all(n.isdigit() for n in words[1::2]):
            raise AllocationError(f"malformed LSB_MCPU_HOSTS {env['LSB_MCPU_HOSTS']!r}")
        pairs = zip(words[::2], words[1::2], strict=True)
        return [host for host, count in pairs for _ in range(int(count))]
    return (env.get("LSB_HOSTS") or "").split()


def detect_lsf(env: Mapping[str, str]) -> Allocation | None:
    """The LSF job of ``env`` (``LSB_JOBID`` set), else None. Its CPUs per host are the slots
    LSF gave there; its tasks are its hosts (hpctune's script asks for ``ptile`` slots per
    node, cores rather than tasks, so a one-node job runs workers locally, as on SLURM)."""
    if not env.get("LSB_JOBID"):
        return None
    lines = _hosts(env)
    if not lines:
        raise AllocationError(
            "LSB_JOBID is set but neither LSB_DJOB_HOSTFILE, LSB_MCPU_HOSTS nor LSB_HOSTS "
            "names a host"
        )
    slots: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, host in enumerate(lines):
        slots[host] = slots.get(host, 0) + 1
        first.setdefault(host, index)
    hosts = tuple(slots)
    return Allocation(
        kind="lsf",
        job_id=env["LSB_JOBID"],
        hosts=hosts,
        cpus=tuple(slots[h] for h in hosts),
        tasks=len(hosts),
        first_slots=tuple(first[h] for h in hosts),
    )


class BlaunchLauncher(Launcher):
    """One ``blaunch HOST`` per host, each starting that host's workers with ``--nworkers``
    (LSF starts and accounts the tasks, and ends them with the job)."""

    name = "blaunch"

    def __init__(self, executable: str = "blaunch"):
        self.executable = executable

    def commands(
        self, layout: Layout, worker: WorkerSpec, env: Mapping[str, str]
    ) -> list[LaunchCommand]:
        """``blaunch HOST env ... python -m hpctune.worker ... --nworkers N`` per host."""
        return [
            LaunchCommand([self.executable, host, *self.host_command(layout, worker, env, i)])
            for i, host in enumerate(layout.hosts)
        ]


def _lsf_cluster(cores: int, memory: Any, conf: Callable[[str], Any]) -> dict[str, Any]:
    """``bsub < script`` for LSFCluster's jobs too, unless jobqueue.yaml says how."""
    return {"use_stdin": True} if conf("use-stdin") is None else {}


class LSF(Scheduler):
    """IBM Spectrum LSF (``bsub``, ``bjobs``, ``bkill``, ``blaunch``)."""

    kind = "lsf"
    label = "LSF"
    submit_program = "bsub"
    job_variables = ("LSB_JOBID",)
    reserved_directives = RESERVED_DIRECTIVES
    detect_order = 20
    filters = FILTERS
    example_directives = ('-R "select[avx2]"', "-B")
    cpu_variables = ("LSB_DJOB_NUMPROC",)
    jobqueue = JobqueueFlavour(
        cluster_class="LSFCluster",
        section="lsf",
        scratch="${TMPDIR:-/tmp}",
        walltime=lsf_time,
        account_argument="project",
        queue_command="bjobs",
        extra=_lsf_cluster,
    )

    def reserved_key(self, directive: str) -> str | None:
        """The spec key that writes ``directive``; for ``-R``, the first section of its
        resource requirement that hpctune writes (``-R "span[ptile=4]"`` -> ``-R span``)."""
        if self.directive_key(directive) == "-R":
            for section in re.findall(r"([A-Za-z]+)\s*\[", directive):
                key = self.reserved_directives.get(f"-R {section}")
                if key:
                    return key
            return None
        return super().reserved_key(directive)

    # ------------------------------------------------------------------ inside a job

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> Allocation | None:
        """The LSF job this process runs in, its hosts and slots from LSF's variables."""
        return detect_lsf(environ)

    def launcher(self, allocation: Allocation) -> Launcher:
        """blaunch, else mpiexec."""
        if shutil.which("blaunch"):
            return BlaunchLauncher()
        if shutil.which("mpiexec"):
            return MpiexecLauncher()
        raise AllocationError(
            "cluster.mode allocation: neither blaunch nor mpiexec is on PATH in this LSF job, "
            "so workers cannot start on the other nodes (is $LSF_BINDIR on PATH?)"
        )

    # ------------------------------------------------------------------ submit, follow, cancel

    def submit_command(
        self, script: str, *, after: Sequence[Dependency] = (), cluster: str | None = None
    ) -> list[str]:
        """``bsub [-w "done(ID) && ..."] < SCRIPT``."""
        command = ["bsub"]
        if after:
            conditions = [f"{CONDITION[d.type]}({i})" for d in after for i in d.job_ids]
            command += ["-w", " && ".join(conditions)]
        return [*command, STDIN, script]

    def parse_job_id(self, stdout: str, command: Sequence[str]) -> tuple[str, str | None]:
        """bsub prints ``Job <123> is submitted to queue <normal>.`` (after any notes)."""
        for line in reversed(stdout.splitlines()):
            match = SUBMITTED.match(line.strip())
            if match:
                return match.group(1), None
        raise bad_output(command, stdout, "'Job <ID> is submitted to queue <QUEUE>.'")

    def query(self, job_ids: Sequence[str]) -> dict[str, dict[str, dict[str, str]]]:
        """The jobs' records from ``bjobs -a -json``, else its ``-noheader`` text form."""
        proc = run_command(["bjobs", "-a", "-json", "-o", FIELDS, *job_ids], check=False)
        # Unknown ids make bjobs exit non-zero, but it still prints the jobs it knows.
        if proc.stdout.lstrip().startswith("{"):
            try:
                return parse_bjobs_json(proc.stdout)
            except ValueError:
                pass
        fields = f"{FIELDS} delimiter='{DELIMITER}'"
        proc = run_command(["bjobs", "-a", "-noheader", "-o", fields, *job_ids], check=False)
        return parse_bjobs_text(proc.stdout)

    def states(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobState]:
        """bjobs of every job: each job's state, or its array elements'. A job LSF has
        forgotten (finished longer ago than CLEAN_PERIOD) is unknown."""
        ids = [job_id for job_id, _cluster in jobs]
        if not ids:
            return {}
        records = self.query(ids)
        found = {}
        for job_id in ids:
            tasks = records.get(job_id)
            if not tasks:
                found[job_id] = JobState.unknown(job_id)
                continue
            known = [c for r in tasks.values() if (c := _int(r.get("EXIT_CODE"))) is not None]
            failed = next((c for c in known if c != 0), None)
            if failed is None and (known or all(r.get("STAT") == "DONE" for r in tasks.values())):
                failed = 0  # DONE shows no exit code: it is 0
            single = next(iter(tasks.values())) if len(tasks) == 1 else {}
            found[job_id] = summarise(
                job_id,
                {task: r.get("STAT") or "UNKWN" for task, r in tasks.items()},
                PHASE,
                "bjobs",
                exit_code=failed,
                reason=single.get("PEND_REASON") or None,
                ok_states=["DONE"],
            )
        return found

    def cancel(self, jobs: Sequence[tuple[str, str | None]]) -> list[str]:
        """``bkill`` of every job (every element of an array)."""
        command = ["bkill", *(job_id for job_id, _cluster in jobs)]
        run_command(command)
        return [" ".join(command)]

    def max_array_size(self) -> int | None:
        """``MAX_JOB_ARRAY_SIZE`` of ``bparams -a`` (LSF's default is 1000)."""
        proc = run_command(["bparams", "-a"], check=False)
        match = MAX_ARRAY.search(proc.stdout) if proc.returncode == 0 else None
        return int(match.group(1)) if match else None
