#!/usr/bin/env bash
# Stop the local test SLURM cluster started by tests/slurm/up.sh.
#
#   bash tests/slurm/down.sh           # stop slurmd (node1, node2) and slurmctld
#   bash tests/slurm/down.sh --purge   # also forget all jobs and clear the logs
#   bash tests/slurm/down.sh --munge   # also stop munged
#
# Running jobs are killed when their slurmd stops. Safe to run when nothing is
# running.
set -euo pipefail

# The daemons live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
NODES=(node1 node2)
PURGE=0
STOP_MUNGE=0
for arg in "$@"; do
    case $arg in
        --purge) PURGE=1 ;;
        --munge) STOP_MUNGE=1 ;;
        -h | --help)
            sed -n '2,9p' "$0"
            exit 0
            ;;
        *)
            echo "usage: $0 [--purge] [--munge]" >&2
            exit 2
            ;;
    esac
done

log() { echo "[slurm-down] $*"; }

if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E bash "$0" "$@"
    fi
    echo "[slurm-down] ERROR: must run as root" >&2
    exit 1
fi

if [[ -z ${HPCTUNE_SLURM_LOCKED:-} ]]; then
    install -d /run/lock
    exec 9>/run/lock/hpctune-slurm.lock
    flock -w 300 9 || {
        echo "[slurm-down] ERROR: another up.sh/down.sh holds /run/lock/hpctune-slurm.lock" >&2
        exit 1
    }
fi

# pid_of PIDFILE NAME: print the pid if the file names a live process NAME.
pid_of() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
    echo "$pid"
}

# stop PIDFILE NAME LABEL: SIGTERM, wait up to 15 s, then SIGKILL.
stop() {
    local pid i
    if ! pid=$(pid_of "$1" "$2"); then
        rm -f "$1"
        return 0
    fi
    log "stopping $3 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 75); do
        [[ -d /proc/$pid ]] || break
        sleep 0.2
    done
    if [[ -d /proc/$pid ]]; then
        log "$3 still running, killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$1"
}

# Controller first: stopped after the nodes, it waits for them to answer.
stop /run/slurmctld.pid slurmctld slurmctld
for n in "${NODES[@]}"; do
    stop "/run/slurmd-$n.pid" slurmd "slurmd $n"
done

if ((STOP_MUNGE)); then
    stop /run/munge/munged.pid munged munged
fi

if ((PURGE)); then
    log "removing job state, spool and logs"
    rm -rf /var/spool/slurmctld/* /var/spool/slurmd/node*
    rm -f /var/log/slurm/slurmctld.log /var/log/slurm/slurmd-node*.log /var/log/slurm/jobcomp.log
fi
log "done"
