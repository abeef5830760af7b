"""The cluster modes without a batch system: mode choice, allocation parsing, launch commands,
credentials on disk, TLS on the local cluster, time-outs, and dask-jobqueue's arguments."""

from __future__ import annotations

import importlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import alive, synthetic_spec, write_spec

from hpctune.cluster import (
    ClusterError,
    node_name,
    resolve_mode,
    ssh_tunnel,
    start_cluster,
    wait_for_workers,
)
from hpctune.cluster.layout import plan_layout
from hpctune.cluster.processes import WorkerProcesses
from hpctune.cluster.security import write_credentials
from hpctune.errors import AllocationError
from hpctune.schedulers.base import Allocation
from hpctune.schedulers.launch import LaunchCommand, MpiexecLauncher, WorkerSpec
from hpctune.schedulers.pbs import PbsdshLauncher
from hpctune.schedulers.registry import detect_allocation as detect
from hpctune.schedulers.slurm import SRUN_INPUT_VARIABLES, SrunLauncher
from hpctune.schedulers.slurm_hostlist import expand_counts, expand_hostlist
from hpctune.spec import ClusterSpec, load_spec
from hpctune.worker import nworkers, worker_args

cluster_module = importlib.import_module("hpctune.cluster.waiting")


def job_with(tmp_path: Path, **changes):
    return load_spec(synthetic_spec(tmp_path / "cells.nc", **changes), base_dir=tmp_path)


SLURM_2x2 = {
    "SLURM_JOB_ID": "42",
    "SLURM_JOB_NODELIST": "node[1-2]",
    "SLURM_JOB_CPUS_PER_NODE": "2(x2)",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_NTASKS": "4",
    "SLURM_MEM_PER_CPU": "1024",
}


# --------------------------------------------------------------------------- mode


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "local"),
        ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "SLURM_NTASKS": "1"}, "local"),
        ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "SLURM_NTASKS": "4"}, "allocation"),
        ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n[1-2]"}, "allocation"),
        (SLURM_2x2, "allocation"),
    ],
)
def test_auto_mode_follows_the_allocation(tmp_path, environ, expected):
    assert resolve_mode(job_with(tmp_path), environ) == expected


@pytest.mark.parametrize(("lines", "expected"), [(["a"], "local"), (["a", "b"], "allocation")])
def test_auto_mode_in_a_pbs_job(tmp_path, lines, expected):
    nodefile = tmp_path / "nodes"
    nodefile.write_text("\n".join(lines) + "\n")
    environ = {"PBS_JOBID": "7.server", "PBS_NODEFILE": str(nodefile)}
    assert resolve_mode(job_with(tmp_path), environ) == expected


def test_an_explicit_mode_is_kept(tmp_path):
    job = job_with(tmp_path, cluster__mode="jobqueue")
    assert resolve_mode(job, SLURM_2x2) == "jobqueue"
    assert resolve_mode(job_with(tmp_path, cluster__mode="local"), SLURM_2x2) == "local"


# --------------------------------------------------------------------------- allocation


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("node1", ["node1"]),
        ("node[1-3]", ["node1", "node2", "node3"]),
        ("gpu[08-10,12],cpu5", ["gpu08", "gpu09", "gpu10", "gpu12", "cpu5"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("a-b[1,3].x", ["a-b1.x", "a-b3.x"]),
    ],
)
def test_slurm_host_lists_expand(text, hosts):
    assert expand_hostlist(text) == hosts


def test_slurm_cpu_counts_expand():
    assert expand_counts("32(x2),16") == [32, 32, 16]
    with pytest.raises(AllocationError, match="malformed"):
        expand_counts("32(2)")


def test_slurm_allocation_from_the_environment():
    allocation = detect(SLURM_2x2)
    assert allocation == Allocation(
        kind="slurm",
        job_id="42",
        hosts=("node1", "node2"),
        cpus=(2, 2),
        tasks=4,
        memory=(2 * 2**30, 2 * 2**30),
    )
    assert allocation.multi
    inside = detect({**SLURM_2x2, "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4"})
    assert inside.step_tasks == 4


def test_pbs_allocation_from_the_node_file(tmp_path):
    nodefile = tmp_path / "nodes"
    nodefile.write_text("cn7\ncn7\ncn9\ncn9\ncn9\n")
    allocation = detect({"PBS_JOBID": "12.pbs", "PBS_NODEFILE": str(nodefile)})
    assert allocation.hosts == ("cn7", "cn9")
    assert allocation.cpus == (2, 3)
    assert allocation.first_slots == (0, 2)
    # PBS Pro with one line per chunk: NCPUS says how many cores the node has
    nodefile.write_text("cn7\ncn9\n")
    allocation = detect({"PBS_JOBID": "12.pbs", "PBS_NODEFILE": str(nodefile), "NCPUS": "8"})
    assert allocation.cpus == (8, 8)


def test_layout_uses_every_allocated_core():
    allocation = detect({**SLURM_2x2, "SLURM_JOB_CPUS_PER_NODE": "4,2"})
    layout = plan_layout(allocation, ClusterSpec())
    assert layout.workers == (4, 2) and layout.threads == 1 and layout.slots == 6
    layout = plan_layout(allocation, ClusterSpec(threads=2))
    assert layout.workers == (2, 1) and layout.slots == 6
    layout = plan_layout(detect(SLURM_2x2), ClusterSpec(workers=1, threads=2))
    assert layout.workers == (1, 1)
    assert layout.memory_limit == (2 * 2**30, 2 * 2**30)


def test_layout_larger_than_the_allocation_is_refused():
    with pytest.raises(AllocationError, match=r"cluster.workers x cluster.threads = 2 x 2"):
        plan_layout(detect(SLURM_2x2), ClusterSpec(workers=2, threads=2))


# --------------------------------------------------------------------------- launchers

WORKER = WorkerSpec(address="tls://10.0.0.1:8786", tls_args=("--tls-ca-file", "ca.pem"))


def test_srun_starts_one_worker_per_task():
    layout = plan_layout(detect(SLURM_2x2), ClusterSpec())
    (command,) = SrunLauncher().commands(layout, WORKER, {"OMP_NUM_THREADS": "1"})
    argv = command.argv
    assert argv[0] == "srun"
    for option in (
        "--nodes=2",
        "--ntasks=4",
        "--ntasks-per-node=2",
        "--cpus-per-task=1",
        "--kill-on-bad-exit=0",
    ):
        assert option in argv
    assert "--overlap" not in argv
    worker = argv[argv.index("-m") - 1 :]
    assert worker[:4] == [sys.executable, "-m", "hpctune.worker", "tls://10.0.0.1:8786"]
    assert worker[worker.index("--nthreads") + 1] == "1"
    assert worker[worker.index("--memory-limit") + 1] == str(2**30)
    assert worker[worker.index("--dashboard-address") + 1] == "127.0.0.1:0"
    assert "--nworkers" not in worker
    assert command.env == {"OMP_NUM_THREADS": "1"}
    assert set(SRUN_INPUT_VARIABLES) <= set(command.unset)
    inside = SrunLauncher(inside_step=True).commands(layout, WORKER, {})[0]
    assert "--overlap" in inside.argv


def test_pbsdsh_starts_each_hosts_workers(tmp_path):
    nodefile = tmp_path / "nodes"
    nodefile.write_text("cn7\ncn7\ncn9\ncn9\n")
    allocation = detect({"PBS_JOBID": "12.pbs", "PBS_NODEFILE": str(nodefile)})
    layout = plan_layout(allocation, ClusterSpec())
    pro = PbsdshLauncher("pbs", allocation.first_slots).commands(layout, WORKER, {"A": "1"})
    assert [c.argv[:4] for c in pro] == [
        ["pbsdsh", "-n", "0", "--"],
        ["pbsdsh", "-n", "2", "--"],
    ]
    tail = pro[1].argv[pro[1].argv.index("env") :]
    assert tail[tail.index("A=1") + 1] == "HPCTUNE_NODE_NAME=cn9"
    assert f"PATH={os.environ['PATH']}" in tail  # module loads of the job script reach the task
    assert pro[1].argv[pro[1].argv.index("--nworkers") + 1] == "2"
    torque = PbsdshLauncher("torque").commands(layout, WORKER, {})
    assert [c.argv[:3] for c in torque] == [["pbsdsh", "-h", "cn7"], ["pbsdsh", "-h", "cn9"]]
    mpi = MpiexecLauncher().commands(layout, WORKER, {})
    assert mpi[0].argv[:5] == ["mpiexec", "-n", "1", "-host", "cn7"]


def test_worker_entry_point_fills_in_scratch_and_name(monkeypatch, tmp_path):
    monkeypatch.setenv("SLURM_TMPDIR", str(tmp_path))
    monkeypatch.setenv("SLURMD_NODENAME", "node7")
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.delenv("HPCTUNE_NODE_NAME", raising=False)
    args = worker_args(["tls://x:1"])
    assert args == ["tls://x:1", "--local-directory", str(tmp_path), "--name", "node7-3"]
    assert worker_args(["tls://x:1", "--local-directory=/s", "--name", "w"]) == [
        "tls://x:1",
        "--local-directory=/s",
        "--name",
        "w",
    ]


def test_worker_entry_point_reads_nworkers():
    assert nworkers(["tls://x:1"]) == 1
    assert nworkers(["tls://x:1", "--nworkers", "4", "--nanny"]) == 4
    assert nworkers(["tls://x:1", "--nworkers=3"]) == 3
    assert nworkers(["tls://x:1", "--nworkers", "auto"]) == 1  # dask worker's own reading


@pytest.mark.full
def test_a_nodes_workers_are_forked_from_one_preloaded_server(tmp_path):
    """``hpctune.worker --nworkers 2`` (PBS hosts, jobqueue jobs of several processes): the two
    workers come from one server that imported dask-ml once."""
    from distributed import Client, LocalCluster

    def probe():
        import os
        import sys

        return os.getppid(), "dask_ml.model_selection" in sys.modules

    with (
        LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):
        command = [sys.executable, "-m", "hpctune.worker", cluster.scheduler_address]
        command += ["--nworkers", "2", "--nthreads", "1", "--local-directory", str(tmp_path)]
        env = {k: v for k, v in os.environ.items() if k != "HPCTUNE_FORKSERVER"}
        node = subprocess.Popen(command, env=env, start_new_session=True)
        try:
            client.wait_for_workers(2, timeout=60)
            seen = list(client.run(probe).values())
        finally:
            os.killpg(node.pid, signal.SIGTERM)
            node.wait(timeout=60)
    parents = {parent for parent, _ in seen}
    assert len(parents) == 1 and node.pid not in parents  # not the nannies' own process
    assert [imported for _, imported in seen] == [True, True]


def test_node_name_prefers_what_the_launcher_says(monkeypatch):
    monkeypatch.setenv("SLURMD_NODENAME", "node1")
    monkeypatch.setenv("HPCTUNE_NODE_NAME", "cn9")
    assert node_name() == "cn9"
    monkeypatch.delenv("HPCTUNE_NODE_NAME")
    assert node_name() == "node1"


def test_local_mode_keeps_to_the_cpus_of_a_batch_job(monkeypatch):
    from hpctune.cluster import available_cores

    monkeypatch.delenv("NCPUS", raising=False)
    monkeypatch.delenv("PBS_NUM_PPN", raising=False)
    monkeypatch.delenv("SLURM_CPUS_ON_NODE", raising=False)
    everything = available_cores()
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "1")
    assert available_cores() == 1
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", str(everything + 8))
    assert available_cores() == everything


def test_ssh_tunnel_line():
    line = ssh_tunnel("http://127.0.0.1:40123/status")
    assert line.startswith("ssh -N -L 40123:127.0.0.1:40123 ")


# --------------------------------------------------------------------------- credentials


def test_credentials_are_private_and_removed(tmp_path):
    credentials = write_credentials(tmp_path)
    folder = credentials.folder
    assert folder.parent == tmp_path and folder.name.startswith(".dask-tls-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    credentials.write_scheduler_file("tls://127.0.0.1:1")
    for path in (
        credentials.ca_file,
        credentials.cert_file,
        credentials.key_file,
        credentials.scheduler_file,
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "PRIVATE KEY" in credentials.key_file.read_text()
    security = credentials.security()
    assert security.require_encryption and security.tls_worker_key == str(credentials.key_file)
    credentials.remove()
    assert not folder.exists()


@pytest.fixture
def dask_config_restored():
    """A Client that fails to connect leaves ``scheduler: dask.distributed`` in the config."""
    import copy
    import gc

    import dask

    saved = copy.deepcopy(dask.config.config)
    yield
    gc.collect()  # the failed Client's clean-up runs now, not during a later test
    dask.config.config.clear()
    dask.config.config.update(saved)


def test_local_cluster_talks_tls_only(tmp_path, dask_config_restored):
    from distributed import Client

    job = job_with(tmp_path, cluster__mode="local", cluster__workers=1, cluster__threads=2)
    with start_cluster(job) as handle:
        assert handle.address.startswith("tls://127.0.0.1:")
        assert handle.slots == 2
        assert handle.client.submit(lambda x: x + 1, 1).result(timeout=30) == 2
        assert handle.address in handle.description
        # without this run's credentials there is no way in
        plain = handle.address.replace("tls://", "tcp://")
        with pytest.raises((OSError, TimeoutError)):
            Client(plain, timeout=2)
        with pytest.raises((OSError, TimeoutError, TypeError, ValueError)):
            Client(handle.address, timeout=2)


WORKER_PROBE = """
import json, os, sys
import psutil
from hpctune import load_spec
from hpctune.cluster import start_cluster

def probe():
    import gc, os, sys
    names = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "PYTHONHASHSEED")
    return {
        "parent": os.getppid(),
        "env": {name: os.environ.get(name, "unset") for name in names},
        "imported": [m for m in ("dask_ml.model_selection", "sklearn.linear_model")
                     if m in sys.modules],
        "frozen": gc.get_freeze_count(),
    }

with start_cluster(load_spec(sys.argv[1])) as handle:
    seen = list(handle.client.run(probe).values())
for worker in seen:
    worker["parent_is_driver"] = worker["parent"] == os.getpid()
    worker["parent_command"] = " ".join(psutil.Process(worker["parent"]).cmdline())
print(json.dumps(seen))
"""


def probe_local_workers(job_path: Path, **environ: str) -> list[dict]:
    """Start the local cluster of ``job_path`` in a fresh process, as ``hpctune run`` does, and
    describe its workers as they are before any task: parent process, environment, modules."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    env.update(environ)
    out = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE, str(job_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.full
def test_local_workers_are_forked_ready_with_distributeds_environment(tmp_path):
    """Each worker is forked from one server that imported dask-ml and the spec's estimator
    module once; the environment is what distributed sets for workers (one BLAS thread, a
    fixed hash seed), except MALLOC_TRIM_THRESHOLD_: it made every fit ~5% slower. What the
    server imported is frozen, so that a worker's collector leaves those pages shared."""
    path = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc", cluster__workers=2))
    workers = probe_local_workers(path)
    assert len(workers) == 2
    assert len({w["parent"] for w in workers}) == 1, "both from the same server"
    for worker in workers:
        assert not worker["parent_is_driver"]
        assert "forkserver" in worker["parent_command"]
        assert worker["imported"] == ["dask_ml.model_selection", "sklearn.linear_model"]
        assert worker["frozen"] > 100_000, "the libraries' objects stay out of the collector"
        assert worker["env"] == {
            "MALLOC_TRIM_THRESHOLD_": "unset",
            "OMP_NUM_THREADS": "1",
            "PYTHONHASHSEED": "6640",
        }


@pytest.mark.parametrize(
    ("config", "environ"),
    [
        ({}, {}),
        ("worker", {}),
        ("worker", {"OMP_NUM_THREADS": "4", "PYTHONHASHSEED": "0"}),
        ({"distributed.nanny.pre-spawn-environ": {"A": 1, "B": None}}, {"PYTHONHASHSEED": "7"}),
    ],
)
def test_the_forkserver_environment_is_what_a_nanny_gives_its_worker(config, environ, monkeypatch):
    """The forkserver starts under the variables a nanny sets before it spawns a worker:
    hpctune resolves them as distributed's Nanny does (its private helper is not imported),
    and this holds them equal for the distributed installed."""
    import dask
    from distributed import Nanny

    from hpctune.cluster import WORKER_CONFIG
    from hpctune.cluster.forkserver import server_environment

    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    with dask.config.set(WORKER_CONFIG if config == "worker" else config):
        nanny = Nanny("tcp://127.0.0.1:1")  # built, never started
        assert server_environment() == nanny.pre_spawn_env


def test_forkserver_can_be_turned_off(tmp_path):
    """HPCTUNE_FORKSERVER=0: distributed's default, workers spawned by the nannies in the
    driver process, importing what they need at their first task."""
    path = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc", cluster__workers=1))
    (worker,) = probe_local_workers(path, HPCTUNE_FORKSERVER="0")
    assert worker["parent_is_driver"]
    assert worker["imported"] == []
    assert worker["env"]["MALLOC_TRIM_THRESHOLD_"] == "unset"
    assert worker["env"]["OMP_NUM_THREADS"] == "1"


def test_worker_settings_stay_out_of_the_process_config(tmp_path, dask_config_restored):
    """hpctune's settings for its nannies (forkserver, malloc thresholds) apply while they
    start, not to the Dask configuration of the process that started them (an API user's)."""
    import dask

    job = job_with(tmp_path, cluster__mode="local", cluster__workers=1)
    with start_cluster(job) as handle:
        assert len(handle.client.scheduler_info()["workers"]) == 1
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536
    assert dask.config.get("distributed.worker.multiprocessing-method") == "spawn"


def _timers(dask_worker=None, dask_scheduler=None):
    """Milliseconds between the runs of a server's periodic callbacks (run on the server)."""
    server = dask_worker if dask_worker is not None else dask_scheduler
    return {name: pc.callback_time for name, pc in server.periodic_callbacks.items()}


def test_servers_check_their_event_loop_and_memory_twice_a_second(tmp_path, dask_config_restored):
    """distributed's event-loop check (every 20 ms in every server), memory monitors (every
    100 ms in each worker and nanny) and system monitors (every 500 ms in every server) were most
    of an idle cluster's CPU: hpctune's scheduler, nannies and workers run the first two every
    500 ms, the last every 5 s, and the caller's configuration keeps the defaults."""
    import dask

    job = job_with(tmp_path, cluster__mode="local", cluster__workers=1)
    with start_cluster(job) as handle:
        (worker,) = handle.client.run(_timers).values()
        (nanny,) = handle.client.run(_timers, nanny=True).values()
        scheduler = handle.client.run_on_scheduler(_timers)
    for timers in (worker, nanny, scheduler):
        assert timers["tick"] == 500
        assert timers["monitor"] == 5000  # the system monitor: psutil's counters
    assert worker["memory_monitor"] == nanny["memory_monitor"] == 500
    assert dask.config.get("distributed.admin.tick.interval") == "20ms"
    assert dask.config.get("distributed.admin.system-monitor.interval") == "500ms"
    assert dask.config.get("distributed.worker.memory.monitor-interval") == "100ms"


# --------------------------------------------------------------------------- failures


class Clock:
    """An injected clock for hpctune.cluster: ``sleep`` moves it on (after ``on_sleep``, if
    given) instead of waiting."""

    def __init__(self, on_sleep=None):
        self.now, self.sleeps, self.on_sleep = 0.0, 0, on_sleep

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        if self.on_sleep is not None:
            self.on_sleep()
        self.sleeps += 1
        self.now += seconds


def test_no_worker_is_a_clear_timeout(monkeypatch):
    from distributed import Client, LocalCluster

    clock = Clock()
    with (
        LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):
        monkeypatch.setattr(cluster_module, "time", clock)
        with pytest.raises(ClusterError, match=r"0 of 2 workers connected within cluster"):
            wait_for_workers(client, 2, 1.0)
    # it gave up once its 1.0 s had passed on its clock, not before and not one poll later
    assert clock.sleeps > 1 and 1.0 <= clock.now < 1.0 + clock.now / clock.sleeps


def test_a_launcher_that_fails_stops_the_wait_at_once(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    script = "import sys; print('srun: error: Unable to create step'); sys.exit(1)"
    processes = WorkerProcesses(
        [LaunchCommand([sys.executable, "-c", script])], tmp_path / "workers.log"
    )

    def launcher_ends():
        processes.processes[0].wait(timeout=120)

    clock = Clock(on_sleep=launcher_ends)  # the wait's first pause lasts until it has exited
    with (
        LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):
        processes.start()
        monkeypatch.setattr(cluster_module, "time", clock)
        with pytest.raises(ClusterError, match=r"(?s)exit code 1.*Unable to create step"):
            wait_for_workers(client, 4, 60.0, processes=processes, what="srun workers")
        monkeypatch.undo()
    assert clock.sleeps <= 1, "the wait went on after the launcher had exited"
    processes.stop()


def test_stop_ends_the_whole_process_group(tmp_path):
    marker = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(marker)!r}, "w").write(str(child.pid))
        time.sleep(600)
        """
    )
    processes = WorkerProcesses(
        [LaunchCommand([sys.executable, "-c", script])], tmp_path / "workers.log"
    )
    processes.start()
    deadline = time.monotonic() + 30
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(marker.read_text())
    processes.stop(timeout=0.5)
    assert processes.all_exited()
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "the launcher's child outlived stop()"
        time.sleep(0.05)


def test_allocation_mode_outside_an_allocation_says_so(tmp_path, monkeypatch):
    for variable in ("SLURM_JOB_ID", "PBS_JOBID"):
        monkeypatch.delenv(variable, raising=False)
    job = job_with(tmp_path, cluster__mode="allocation")
    with pytest.raises(ClusterError, match="not a batch job"), start_cluster(job):
        pass


# --------------------------------------------------------------------------- Ctrl-C


def test_importing_dask_jobqueue_keeps_the_sigint_handler():
    """dask-jobqueue 0.9.0 replaces SIGINT's handler on import (#696); hpctune puts it back."""
    code = textwrap.dedent(
        """
        import signal
        def mine(*_):
            pass
        signal.signal(signal.SIGINT, mine)
        from hpctune.cluster.jobqueue import import_dask_jobqueue
        import_dask_jobqueue()
        assert signal.getsignal(signal.SIGINT) is mine, signal.getsignal(signal.SIGINT)
        import dask_jobqueue.runner  # what replaced it
        print("kept")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0 and "kept" in out.stdout, out.stderr


def jobqueue_run_that_never_gets_workers(tmp_path, *args, start_timeout=60):
    """``hpctune run`` in mode jobqueue with a stand-in sbatch whose jobs never start."""
    from helpers import synthetic, write_spec

    synthetic(cells=2).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        cluster__mode="jobqueue",
        cluster__interface="lo",
        cluster__start_timeout=start_timeout,
        scheduler__memory="1GB",
    )
    path = write_spec(tmp_path, spec)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in (("sbatch", "echo 'Submitted batch job 999999'"), ("scancel", "exit 0")):
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen(
        [sys.executable, "-m", "hpctune", "-v", "run", str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


@pytest.mark.full
def test_ctrl_c_stops_a_jobqueue_run_before_any_job(tmp_path):
    """SIGINT while the scheduler waits for worker jobs: the run stops (exit 130), not exit 0."""
    process = jobqueue_run_that_never_gets_workers(tmp_path)
    try:
        deadline = time.monotonic() + 90
        while not list((tmp_path / "out" / "synthetic").glob(".dask-tls-*/scheduler.json")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=50)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert "stopped while waiting for workers of the worker jobs" in err
    assert not list((tmp_path / "out" / "synthetic").glob(".dask-tls-*"))


@pytest.mark.full
def test_worker_jobs_that_never_start_end_the_run_with_a_clear_message(tmp_path):
    process = jobqueue_run_that_never_gets_workers(tmp_path, start_timeout=3)
    try:
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 1, err
    assert "0 of 1 workers of the worker jobs connected within cluster.start_timeout=3 s" in err
    assert "may still be waiting in the queue" in err
    assert not list((tmp_path / "out" / "synthetic").glob(".dask-tls-*"))
