#!/usr/bin/env bash
# One sweep shared by the tasks of a SLURM job array: each task runs its share
# (--shard=TASK/COUNT) into one shared results folder, then one
# `python -m memobench.leaderboard` call aggregates it.
#
#   sbatch --array=0-7 launch/slurm_array.sh experiments/zhang2017_fig1.py --workdir=/shared/fig1
#   sbatch --array=0-7 launch/slurm_array.sh -m memobench.main --spec=mnist5k_randlabels \
#       --seeds=64 --workdir=/shared/randlabels
#
# The arguments are a Python script (or `-m MODULE`) and its flags; this adds
# --shard=$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT. The partition is a pure
# function of the job list, so every task computes the same one; each run's
# workdir lock keeps two tasks off one run, and a task that is requeued resumes
# its runs from their checkpoints. A Kubernetes Indexed Job does the same with
# $JOB_COMPLETION_INDEX and its completions count (set SHARD_INDEX/SHARD_COUNT).
#SBATCH --job-name=memobench
#SBATCH --cpus-per-task=2
#SBATCH --requeue
set -euo pipefail

index=${SHARD_INDEX:-${SLURM_ARRAY_TASK_ID:-}}
count=${SHARD_COUNT:-${SLURM_ARRAY_TASK_COUNT:-}}
if [[ -z "$index" || -z "$count" || $# -lt 1 ]]; then
  echo "usage: sbatch --array=0-N $0 SCRIPT.py|-m MODULE [flags...]" \
       "(or SHARD_INDEX=i SHARD_COUNT=n $0 ...)" >&2
  exit 2
fi
exec "${PYTHON:-python}" "$@" --shard="$index/$count"
