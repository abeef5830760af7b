#!/usr/bin/env bash
# Start a local SLURM cluster of two emulated nodes (node1, node2) on this host.
#
#   bash tests/slurm/up.sh
#
# Idempotent: installs the Debian packages if missing, creates the munge key,
# starts munged, renders tests/slurm/slurm.conf.in to /etc/slurm/slurm.conf
# (and copies tests/slurm/cgroup.conf next to it),
# starts slurmctld and one slurmd per node, and waits until both nodes are
# usable. When the cluster is already up with the same configuration it only
# checks it and returns. Needs root (re-runs itself through sudo otherwise).
#
# Environment (all optional):
#   HPCTUNE_SLURM_UP_TIMEOUT   seconds to wait for the nodes (default 60)
#   HPCTUNE_SLURMCTLD_PORT     slurmctld port (default 6817)
#   HPCTUNE_SLURMD_PORT        port of node1; node2 uses the next one (default 6818)
#   HPCTUNE_SLURM_REAL_MEMORY  RealMemory of each node in MB (default 8192)
#   HPCTUNE_SLURM_MAX_ARRAY    MaxArraySize (default 10: array indices 0-9)
set -euo pipefail

# The daemons live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE=$HERE/slurm.conf.in
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
NODES=(node1 node2)
TIMEOUT=${HPCTUNE_SLURM_UP_TIMEOUT:-60}
CTLD_PORT=${HPCTUNE_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${HPCTUNE_SLURMD_PORT:-6818}
REAL_MEMORY=${HPCTUNE_SLURM_REAL_MEMORY:-8192}
MAX_ARRAY=${HPCTUNE_SLURM_MAX_ARRAY:-10}
START_TS=$(date +%s.%N)

log() { echo "[slurm-up] $*"; }

dump_logs() {
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR"/slurmd-node*.log /var/log/munge/munged.log; do
        if [[ -s $f ]]; then
            echo "----- last lines of $f -----" >&2
            tail -n 25 "$f" >&2 || true
        fi
    done
}

die() {
    echo "[slurm-up] ERROR: $*" >&2
    dump_logs
    exit 1
}

if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E bash "$0" "$@"
    fi
    die "must run as root (no sudo available)"
fi

# One up.sh/down.sh at a time (the lock fd is closed for the daemons).
LOCK=/run/lock/hpctune-slurm.lock
if [[ -z ${HPCTUNE_SLURM_LOCKED:-} ]]; then
    install -d /run/lock
    exec 9>"$LOCK"
    flock -w 300 9 || die "another tests/slurm/up.sh or down.sh holds $LOCK"
    export HPCTUNE_SLURM_LOCKED=1
fi

# ---------------------------------------------------------------- packages
install_packages() {
    local pkgs=()
    if ! command -v sbatch >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 \
        || ! command -v slurmctld >/dev/null 2>&1; then
        pkgs+=(slurm-wlm)
    fi
    command -v munged >/dev/null 2>&1 || pkgs+=(munge)
    command -v qsub >/dev/null 2>&1 || pkgs+=(slurm-wlm-torque)
    ((${#pkgs[@]})) || return 0

    command -v apt-get >/dev/null 2>&1 || die "missing ${pkgs[*]} and no apt-get to install them"
    log "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Wait for the dpkg lock (a fresh VM may be running unattended upgrades).
    local lock=(-o DPkg::Lock::Timeout=300)
    local apt=(apt-get install -y -q --no-install-recommends "${lock[@]}"
        -o Dpkg::Options::=--force-confdef
        -o Dpkg::Options::=--force-confold "${pkgs[@]}")
    # Keep the packages' init scripts from starting daemons with the stock
    # configuration: this script starts them itself.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own_policy=1
    fi
    # Refresh the package lists only when they are missing or too old for the
    # install to succeed.
    local rc=0
    if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null || ! "${apt[@]}"; then
        apt-get update -q "${lock[@]}" && "${apt[@]}" || rc=$?
    fi
    ((own_policy)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get install ${pkgs[*]} failed (rc $rc)"
    command -v sbatch >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
        || die "sbatch/slurmd still missing after installing ${pkgs[*]}"
}

# ------------------------------------------------------------------- munge
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

setup_munge() {
    getent passwd munge >/dev/null || die "user 'munge' does not exist (is the munge package installed?)"
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --force --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key

    munge_ok && return 0
    local pid
    if [[ -s /run/munge/munged.pid ]]; then
        pid=$(cat /run/munge/munged.pid)
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == munged ]]; then
            log "munged (pid $pid) does not answer, restarting it"
            kill "$pid" 2>/dev/null || true
            sleep 1
        fi
        rm -f /run/munge/munged.pid
    fi
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged 9>&- || die "munged failed to start"
    local i
    for i in $(seq 50); do
        munge_ok && return 0
        sleep 0.2
    done
    die "munged started but 'munge -n | unmunge' fails"
}

# ------------------------------------------------------------------ config
CONF_CHANGED=0
write_conf() {
    [[ -f $TEMPLATE ]] || die "template $TEMPLATE not found"
    local tmp
    tmp=$(mktemp)
    sed -e "s/@SLURMCTLD_PORT@/$CTLD_PORT/g" \
        -e "s/@SLURMD_PORT_NODE1@/$SLURMD_PORT/g" \
        -e "s/@SLURMD_PORT_NODE2@/$((SLURMD_PORT + 1))/g" \
        -e "s/@REAL_MEMORY@/$REAL_MEMORY/g" \
        -e "s/@MAX_ARRAY_SIZE@/$MAX_ARRAY/g" \
        "$TEMPLATE" >"$tmp"
    if grep -q '@[A-Z_0-9]*@' "$tmp"; then
        rm -f "$tmp"
        die "unsubstituted placeholder left in $TEMPLATE"
    fi
    install -d -m 0755 "$CONF_DIR"
    if ! cmp -s "$tmp" "$CONF"; then
        [[ -f $CONF ]] && log "updating $CONF" || log "writing $CONF"
        install -m 0644 "$tmp" "$CONF"
        CONF_CHANGED=1
    fi
    rm -f "$tmp"
    if ! cmp -s "$HERE/cgroup.conf" "$CONF_DIR/cgroup.conf"; then
        log "writing $CONF_DIR/cgroup.conf"
        install -m 0644 "$HERE/cgroup.conf" "$CONF_DIR/cgroup.conf"
        CONF_CHANGED=1
    fi
    install -d -m 0755 "$LOG_DIR" /var/spool/slurmctld
    local n
    for n in "${NODES[@]}"; do
        install -d -m 0755 "/var/spool/slurmd/$n"
    done
}

# ----------------------------------------------------------------- daemons
# pid_alive PIDFILE NAME: the pid file names a live process called NAME.
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

# pids_named NAME: pids of the processes whose command name is NAME (no pgrep
# on minimal systems).
pids_named() {
    local d
    for d in /proc/[0-9]*; do
        [[ $(cat "$d/comm" 2>/dev/null) == "$1" ]] && echo "${d#/proc/}"
    done
    return 0
}

ctld_alive() { pid_alive /run/slurmctld.pid slurmctld; }
slurmd_alive() { pid_alive "/run/slurmd-$1.pid" slurmd; }
ctld_answers() { timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_daemons() {
    if ! ctld_alive; then
        # A controller started by someone else (e.g. the distribution's
        # service) would hold the port: it must be ours.
        local others
        others=$(pids_named slurmctld | tr '\n' ' ')
        if [[ -n $others ]]; then
            die "a slurmctld not started by this script is running (pid $others); stop it first"
        fi
        log "starting slurmctld"
        slurmctld 9>&- || die "slurmctld failed to start"
    fi
    local i
    for i in $(seq 100); do
        ctld_answers && break
        ctld_alive || die "slurmctld exited during start-up"
        sleep 0.2
    done
    ctld_answers || die "slurmctld does not answer 'scontrol ping'"

    local n
    for n in "${NODES[@]}"; do
        if ! slurmd_alive "$n"; then
            log "starting slurmd for $n"
            slurmd -N "$n" 9>&- || die "slurmd -N $n failed to start"
        fi
    done
}

# ------------------------------------------------------------------- nodes
# Prints "node state" lines, e.g. "node1 idle", "node2 down*".
node_states() { timeout 10 sinfo -h -N -p debug -o '%N %t' 2>/dev/null | sort -u; }

wait_nodes() {
    local deadline states ok n st resumed=0
    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        states=$(node_states || true)
        ok=1
        for n in "${NODES[@]}"; do
            st=$(awk -v n="$n" '$1 == n {print $2}' <<<"$states")
            case $st in
                idle | mix | mix- | alloc | alloc+ | comp | plnd) ;;
                drain | drng | down | fail | failg)
                    ok=0
                    if ((resumed < 5)); then
                        log "$n is $st, resuming it"
                        scontrol update nodename="$n" state=resume 2>/dev/null || true
                        resumed=$((resumed + 1))
                    fi
                    ;;
                *) ok=0 ;; # unknown, not responding (*), booting, ...
            esac
        done
        ((ok)) && return 0
        if (($(date +%s) >= deadline)); then
            echo "[slurm-up] node states after ${TIMEOUT}s:" >&2
            timeout 10 sinfo -N -l >&2 || true
            timeout 10 scontrol show node >&2 || true
            die "nodes ${NODES[*]} did not become idle within ${TIMEOUT}s"
        fi
        sleep 0.5
    done
}

# -------------------------------------------------------------------- main
install_packages
setup_munge
write_conf
if ((CONF_CHANGED)) && { ctld_alive || slurmd_alive node1 || slurmd_alive node2; }; then
    log "configuration changed, restarting the daemons"
    bash "$HERE/down.sh"
fi
start_daemons
wait_nodes

elapsed=$(awk -v s="$START_TS" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
log "cluster hpctune-test is up (${elapsed}s): conf $CONF, logs $LOG_DIR"
sinfo -N -o '%N %P %t %c %m' | sed 's/^/[slurm-up]   /'
