#!/bin/bash
#SBATCH --job-name=golden
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --mem=60G
#SBATCH --time=1-12:00:00
#SBATCH --partition=normal
#SBATCH --account=proj-42
#SBATCH --array=0-9
#SBATCH --output=results/golden/logs/%x-%A_%a.out
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --signal=B:USR1@300
#SBATCH --constraint=haswell
#SBATCH --qos=long
#
# hpctune run job for jobs/golden.yaml
# Array tasks 0-9 run slices 10-19 of 25.
# Paths are relative to the folder this script is submitted from. Create the log folder
# before the first submission: mkdir -p results/golden/logs

set -eo pipefail
cd "$SLURM_SUBMIT_DIR"
export OMP_NUM_THREADS=1
export NOTE='it'"'"'s $HOME'
module load 2024
source $HOME/venvs/hpctune/bin/activate
set +e

# hpctune runs in the background so that this shell can pass signals on to it. On a signal it
# starts no new partitions, keeps the finished ones on disk and exits: run it again to resume.
stop_signal=
forward() { stop_signal=$1; kill -s "$1" "$child" 2>/dev/null; }
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward USR1' USR1
hpctune run jobs/golden.yaml --set search.seed=7 --slice "$((10 + $SLURM_ARRAY_TASK_ID))/25" &
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
# USR1 came 300 s before the walltime (--signal=B:USR1@300): requeue this job, so
# that it resumes where it stopped (at most 10 times).
if [ "$stop_signal" = USR1 ] && [ "${SLURM_RESTART_COUNT:-0}" -lt 10 ]; then
    echo "hpctune: walltime near: requeueing job $SLURM_JOB_ID to resume" >&2
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
