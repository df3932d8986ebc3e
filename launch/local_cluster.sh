#!/usr/bin/env bash
# N processes on this machine forming one JAX cluster (CPU, gloo collectives):
# the multi-host code path of a TPU pod, testable on a laptop.
#
#   launch/local_cluster.sh 2 --spec=digits_clean --workdir=/tmp/mb_cluster
#
# Every process runs the same `python -m memobench.main` command with its own
# --process_id; process 0 is the coordinator, writes result.json and logs.
# Environment:
#   MEMOBENCH_PORT            coordinator port (default: a free one)
#   MEMOBENCH_LOCAL_DEVICES   CPU devices per process (default 1)
#   MEMOBENCH_TIMEOUT         if set, bound each process with `timeout -k 5 $MEMOBENCH_TIMEOUT`
#                             (jax.distributed catches SIGTERM, hence -k)
# Exit status: the first non-zero exit status of a process, else 0.
set -uo pipefail

if [[ $# -lt 1 || ! "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 NUM_PROCESSES [memobench.main flags...]" >&2
  exit 2
fi
n=$1
shift
python=${PYTHON:-python}
port=${MEMOBENCH_PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
devices=${MEMOBENCH_LOCAL_DEVICES:-1}
bound=()
if [[ -n "${MEMOBENCH_TIMEOUT:-}" ]]; then
  bound=(timeout -k 5 "$MEMOBENCH_TIMEOUT")
fi

pids=()
for ((i = 0; i < n; i++)); do
  JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=$devices ${XLA_FLAGS:-}" \
    "${bound[@]}" "$python" -m memobench.main --distributed=true \
    --coordinator_address="127.0.0.1:$port" --num_processes="$n" --process_id="$i" "$@" &
  pids+=($!)
done
# A preemption (SIGTERM) or Ctrl-C of this script goes to every process.
trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM INT

status=0
for pid in "${pids[@]}"; do
  # `wait` returns early when a trapped signal arrives; wait again until the
  # process has really exited (it is checkpointing and writing its result).
  while true; do
    wait "$pid"
    rc=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  if [[ $rc -ne 0 && $status -eq 0 ]]; then
    status=$rc
  fi
done
exit "$status"
