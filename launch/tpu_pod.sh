#!/usr/bin/env bash
# Run a memobench spec on a Cloud TPU VM pod slice: one process per host, all
# hosts forming one JAX cluster (memobench.main auto-detects the TPU VM and
# calls jax.distributed.initialize()), the global batch sharded over every chip.
#
#   export TPU_NAME=memobench-v4-32 ZONE=us-central2-b ACCELERATOR=v4-32 \
#          BUCKET=gs://my-bucket
#   launch/tpu_pod.sh create                 # the pod slice (gcloud compute tpus tpu-vm create)
#   launch/tpu_pod.sh setup                  # copy this checkout to every worker, pip install
#   launch/tpu_pod.sh prepare cifar10        # once: TFDS -> $BUCKET/tfds (on worker 0)
#   launch/tpu_pod.sh run cifar10_randpix [memobench.main flags...]
#   launch/tpu_pod.sh delete
#
# `run` starts the same command on every worker (--worker=all):
#   python -m memobench.main --spec=SPEC --workdir=$BUCKET/runs/SPEC/seed0 \
#     --data_dir=$BUCKET/tfds --compilation_cache_dir=$BUCKET/jax_cache [flags]
# Results, checkpoints and the compilation cache live in the bucket, shared by
# all hosts. A preempted slice (spot/preemptible: SIGTERM -> checkpoint, status
# 'preempted') is resumed by running the same `run` command again, on the same
# or a recreated slice; each rerun counts in result.json's run.preemption_count.
#
# Environment:
#   TPU_NAME, ZONE, ACCELERATOR (e.g. v4-32, v5litepod-16), BUCKET   required
#   PROJECT          gcloud project (default: gcloud's configured one)
#   RUNTIME_VERSION  TPU VM image (default tpu-ubuntu2204-base)
#   SPOT=1           create a spot slice (preemptible)
#   SEED             default 0
set -euo pipefail

usage() {
  sed -n '2,30p' "$0" >&2
  exit 2
}
need() {
  for v in "$@"; do
    if [[ -z "${!v:-}" ]]; then
      echo "tpu_pod.sh: error: \$$v is not set" >&2
      exit 2
    fi
  done
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
need TPU_NAME ZONE
project=()
[[ -n "${PROJECT:-}" ]] && project=(--project="$PROJECT")
tpu=(gcloud compute tpus tpu-vm)
on_all() {  # run a shell command on every worker of the slice
  "${tpu[@]}" ssh "$TPU_NAME" --zone="$ZONE" "${project[@]}" --worker=all --command="$1"
}
remote_dir='~/memobench'

case "$cmd" in
  create)
    need ACCELERATOR
    spot=()
    [[ "${SPOT:-0}" == 1 ]] && spot=(--spot)
    "${tpu[@]}" create "$TPU_NAME" --zone="$ZONE" "${project[@]}" \
      --accelerator-type="$ACCELERATOR" --version="${RUNTIME_VERSION:-tpu-ubuntu2204-base}" \
      "${spot[@]}"
    ;;
  setup)
    # Ship this checkout (without results or caches) to every worker and install
    # it with TPU JAX and gcsfs (gs:// workdirs and data dirs).
    repo=$(cd "$(dirname "$0")/.." && pwd)
    tarball=$(mktemp --suffix=.tar.gz)
    tar -C "$repo" --exclude=.git --exclude='*.egg-info' --exclude=__pycache__ -czf "$tarball" .
    "${tpu[@]}" scp "$tarball" "$TPU_NAME:/tmp/memobench.tar.gz" --zone="$ZONE" \
      "${project[@]}" --worker=all
    rm -f "$tarball"
    on_all "mkdir -p $remote_dir && tar -C $remote_dir -xzf /tmp/memobench.tar.gz && \
      cd $remote_dir && pip install -q -U 'jax[tpu]' gcsfs && pip install -q -e ."
    ;;
  prepare)
    # Data is prepared once, by worker 0, into the shared bucket; every host reads it.
    need BUCKET
    [[ $# -ge 1 ]] || usage
    "${tpu[@]}" ssh "$TPU_NAME" --zone="$ZONE" "${project[@]}" --worker=0 --command="\
      cd $remote_dir && pip install -q -e '.[prepare]' && \
      python -m memobench.prepare --dataset=$1 --data_dir=$BUCKET/tfds"
    ;;
  run)
    need BUCKET
    [[ $# -ge 1 ]] || usage
    spec=$1
    shift
    seed=${SEED:-0}
    flags=$(printf ' %q' "$@")
    # The same command on every worker. Exit 143: preempted and checkpointed;
    # rerun this command to resume.
    status=0
    on_all "cd $remote_dir && python -m memobench.main --spec=$spec --seed=$seed \
      --workdir=$BUCKET/runs/$spec/seed$seed --data_dir=$BUCKET/tfds \
      --compilation_cache_dir=$BUCKET/jax_cache --distributed=true$flags" || status=$?
    echo "result: $BUCKET/runs/$spec/seed$seed/result.json (exit $status)" >&2
    exit "$status"
    ;;
  delete)
    "${tpu[@]}" delete "$TPU_NAME" --zone="$ZONE" "${project[@]}" --quiet
    ;;
  *)
    usage
    ;;
esac
