#!/bin/bash
#SBATCH --job-name=ascat-sig-svr-slurm
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=2
#SBATCH --mem=2G
#SBATCH --time=00:30:00
#SBATCH --partition=debug
#SBATCH --output=results/ascat-sig-svr-slurm/logs/%x-%j.out
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
#
# hpctune run job for jobs/slurm.yaml
# Paths are relative to the folder this script is submitted from. Create the log folder
# before the first submission: mkdir -p results/ascat-sig-svr-slurm/logs

set -eo pipefail
cd "$SLURM_SUBMIT_DIR"
set +e

# hpctune runs in the background so that this shell can pass signals on to it. On a signal it
# starts no new partitions, keeps the finished ones on disk and exits: run it again to resume.
stop_signal=
forward() { stop_signal=$1; kill -s "$1" "$child" 2>/dev/null; }
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward USR1' USR1
hpctune run jobs/slurm.yaml &
child=$!
status=0
while :; do
    wait "$child"
    status=$?
    # wait returns early (above 128) when a signal arrives while hpctune is still finishing.
    if [ "$status" -gt 128 ] && kill -0 "$child" 2>/dev/null; then
        continue
    fi
    break
done
# USR1 came 120 s before the walltime (--signal=B:USR1@120): requeue this job, so
# that it resumes where it stopped (at most 10 times).
if [ "$stop_signal" = USR1 ] && [ "${SLURM_RESTART_COUNT:-0}" -lt 10 ]; then
    echo "hpctune: walltime near: requeueing job $SLURM_JOB_ID to resume" >&2
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
