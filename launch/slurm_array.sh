#!/usr/bin/env bash
# One sweep shared by the tasks of a SLURM job array: each task runs its share
# (--shard=INDEX/COUNT) into one shared results folder, then one
# `python -m memobench.leaderboard` call aggregates it.
#
#   sbatch --array=0-7 launch/slurm_array.sh experiments/zhang2017_fig1.py --workdir=/shared/fig1
#   sbatch --array=0-7 launch/slurm_array.sh -m memobench.main --spec=mnist5k_randlabels \
#       --seeds=64 --workdir=/shared/randlabels
#
# The arguments are a Python script (or `-m MODULE`) and its flags; this adds
# --shard=INDEX/COUNT. INDEX and COUNT come from the array itself: a range
# --array=A-B[:S] (any start A, any step S, any %throttle) gives INDEX =
# (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / S and COUNT = the number of
# tasks; an array that is no such range (a list like --array=1,3,8) is refused,
# since its tasks cannot be numbered 0..COUNT-1 without gaps. SHARD_INDEX and
# SHARD_COUNT, when set, win (a Kubernetes Indexed Job: launch/k8s_indexed_job.yaml).
# The partition is a pure function of the job list, so every task computes the
# same one; each run's workdir lock keeps two tasks off one run, and a task that
# is requeued resumes its runs from their checkpoints.
#
# Time limits. --requeue covers preemption and node failure, not TIMEOUT. With
# --signal=B:TERM@300 SLURM sends SIGTERM to this shell 300 s before the time
# limit; the handler passes it to the run, which checkpoints at its next
# evaluation and exits with 143 (status preempted), and when the job is within
# SIGNAL_LEAD + 60 s of its time limit the handler requeues this task
# (scontrol requeue), which then resumes where it stopped. A SIGTERM that is
# not the time limit's (scancel; a preemption, which --requeue requeues
# itself) is passed on without a requeue. Keep SIGNAL_LEAD equal to the
# --signal seconds, and both longer than one evaluation interval plus a
# checkpoint save (BUILD.md, "Sweeps on the schedulers people use").
#SBATCH --job-name=memobench
#SBATCH --cpus-per-task=2
#SBATCH --requeue
#SBATCH --signal=B:TERM@300
set -uo pipefail

SIGNAL_LEAD=${MEMOBENCH_SIGNAL_LEAD:-300}

usage() {
  echo "usage: sbatch --array=0-N $0 SCRIPT.py|-m MODULE [flags...]" \
       "(or SHARD_INDEX=i SHARD_COUNT=n $0 ...)" >&2
  exit 2
}
refuse() {
  echo "launch/slurm_array.sh: $*" >&2
  exit 2
}
is_int() { [[ "$1" =~ ^[0-9]+$ ]]; }

[[ $# -ge 1 ]] || usage
if [[ -n "${SHARD_INDEX:-}" || -n "${SHARD_COUNT:-}" ]]; then
  index=${SHARD_INDEX:-}
  count=${SHARD_COUNT:-}
  is_int "$index" && is_int "$count" || refuse "SHARD_INDEX and SHARD_COUNT must both be" \
      "set to integers, got '${index}' and '${count}'"
elif [[ -n "${SLURM_ARRAY_TASK_ID:-}" ]]; then
  id=$SLURM_ARRAY_TASK_ID
  min=${SLURM_ARRAY_TASK_MIN:-}
  max=${SLURM_ARRAY_TASK_MAX:-}
  step=${SLURM_ARRAY_TASK_STEP:-1}
  for v in "$id" "$min" "$max" "$step"; do
    is_int "$v" || refuse "SLURM_ARRAY_TASK_ID/MIN/MAX/STEP must be integers, got" \
        "'$id' '$min' '$max' '$step'"
  done
  (( step >= 1 )) || refuse "SLURM_ARRAY_TASK_STEP must be >= 1, got $step"
  count=$(( (max - min) / step + 1 ))
  index=$(( (id - min) / step ))
  if (( (id - min) % step != 0 || id < min || id > max )) ||
     [[ -n "${SLURM_ARRAY_TASK_COUNT:-}" && "${SLURM_ARRAY_TASK_COUNT}" != "$count" ]]; then
    refuse "array task $id of an array that is not one range A-B[:S]" \
        "(min $min, max $max, step $step, ${SLURM_ARRAY_TASK_COUNT:-?} tasks):" \
        "its tasks cannot be numbered 0..COUNT-1; submit --array=0-$(( ${SLURM_ARRAY_TASK_COUNT:-count} - 1 ))" \
        "or set SHARD_INDEX/SHARD_COUNT"
  fi
else
  usage
fi
(( index < count )) || refuse "shard index $index is not below the count $count"

# Seconds left before the job's time limit, or nothing when unknown.
seconds_left() {
  local end=${SLURM_JOB_END_TIME:-}
  if [[ -z "$end" ]] && command -v squeue >/dev/null 2>&1 && [[ -n "${SLURM_JOB_ID:-}" ]]; then
    end=$(date -d "$(squeue -h -j "$SLURM_JOB_ID" -o %e 2>/dev/null | head -n1)" +%s 2>/dev/null)
  fi
  is_int "${end:-x}" && echo $(( end - $(date +%s) ))
}

term_received=0
on_term() {
  term_received=1
  [[ -n "${child:-}" ]] && kill -TERM "$child" 2>/dev/null
}
trap on_term TERM

"${PYTHON:-python}" "$@" --shard="$index/$count" &
child=$!
# `wait` returns early when a trapped signal arrives: wait again until the run has exited.
while :; do
  wait "$child"
  rc=$?
  kill -0 "$child" 2>/dev/null || break
done

if (( term_received )); then
  left=$(seconds_left)
  if [[ -n "$left" ]] && (( left <= SIGNAL_LEAD + 60 )); then
    target=${SLURM_JOB_ID:-}
    [[ -n "${SLURM_ARRAY_JOB_ID:-}" ]] && target="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
    echo "launch/slurm_array.sh: time limit in ${left}s: requeueing $target (the run resumes" \
         "from its checkpoints)" >&2
    scontrol requeue "$target" || echo "launch/slurm_array.sh: scontrol requeue $target failed" >&2
  fi
fi
exit "$rc"
