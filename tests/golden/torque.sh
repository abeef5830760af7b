#!/bin/bash
#PBS -N golden
#PBS -l nodes=2:ppn=16
#PBS -l walltime=36:00:00
#PBS -l mem=120gb
#PBS -q normal
#PBS -A proj-42
#PBS -j oe
#PBS -r y
#PBS -m abe
#
# hpctune run job for jobs/golden.yaml
# Paths are relative to the folder this script is submitted from. Create the log folder
# before the first submission: mkdir -p results/golden/logs

set -eo pipefail
cd "${PBS_O_WORKDIR:-$SLURM_SUBMIT_DIR}"
# Torque copies a job's output back only at its end: write it to the log folder as it comes.
mkdir -p results/golden/logs
exec >>results/golden/logs/golden-"${PBS_JOBID:-$SLURM_JOB_ID}".log 2>&1
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
hpctune run jobs/golden.yaml --set search.seed=7 &
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
exit "$status"
