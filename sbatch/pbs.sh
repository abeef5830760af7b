#!/bin/bash
#PBS -N ascat-sig-svr-pbs
#PBS -l select=1:ncpus=8:mem=16gb
#PBS -l walltime=02:00:00
#PBS -q workq
#PBS -j oe
#PBS -r y
#
# hpctune run job for jobs/pbs.yaml
# Paths are relative to the folder this script is submitted from. Create the log folder
# before the first submission: mkdir -p results/ascat-sig-svr-pbs/logs

set -eo pipefail
cd "$PBS_O_WORKDIR"
# PBS copies a job's output back only at its end: write it to the log folder as it comes.
mkdir -p results/ascat-sig-svr-pbs/logs
exec >>results/ascat-sig-svr-pbs/logs/ascat-sig-svr-pbs-"$PBS_JOBID".log 2>&1
module load python/3.11
source $HOME/venvs/hpctune/bin/activate
set +e

# hpctune runs in the background so that this shell can pass signals on to it. On a signal it
# starts no new partitions, keeps the finished ones on disk and exits: run it again to resume.
stop_signal=
forward() { stop_signal=$1; kill -s "$1" "$child" 2>/dev/null; }
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward USR1' USR1
hpctune run jobs/pbs.yaml &
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
