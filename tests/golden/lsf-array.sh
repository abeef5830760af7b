#!/bin/bash
#BSUB -J "golden[1-10]"
#BSUB -o results/golden/logs/golden-%J_%I.out
#BSUB -n 32
#BSUB -R "span[ptile=16]"
#BSUB -R "rusage[mem=3840MB]"
#BSUB -W 36:00
#BSUB -q normal
#BSUB -P proj-42
#BSUB -r
#BSUB -wa USR1
#BSUB -wt 0:05
#BSUB -R "select[avx2]"
#BSUB -B
# LSF numbers the elements 1-10: element i runs task i-1 below.
#
# hpctune run job for jobs/golden.yaml
# Array tasks 0-9 run slices 10-19 of 25.
# Paths are relative to the folder this script is submitted from. Create the log folder
# before the first submission: mkdir -p results/golden/logs

set -eo pipefail
cd "$LS_SUBCWD"
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
hpctune run jobs/golden.yaml --set search.seed=7 --slice "$((10 + (LSB_JOBINDEX - 1)))/25" &
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
