#!/usr/bin/env bash
# The wheels memobench needs on an accelerator image that has Python 3.12 with JAX (CUDA),
# flax, optax, chex, orbax-checkpoint, absl-py, scikit-learn, pandas and pyarrow, and no network.
#
#   launch/accelerator_wheels.sh download DIR   # where a package registry is reachable
#   launch/accelerator_wheels.sh install DIR    # on the accelerator machine, DIR copied there
#
# download: Python 3.12 manylinux wheels of launch/accelerator_requirements.txt, without
# their dependencies (the list is already the closure), into DIR; promise (sdist only)
# is built into a pure-Python wheel. install: every wheel in DIR whose distribution is not
# installed yet, with --no-deps --no-index (the image's own packages are never replaced).
# Then, from the repository root: python -m memobench.bench.accelerator --out_dir=OUT
set -euo pipefail
cmd=${1:-}; dir=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 download|install DIR" >&2; exit 2
fi
case "$cmd" in
  download)
    mkdir -p "$dir"
    grep -v -e '^#' -e '^promise==' "$here/accelerator_requirements.txt" > "$dir/.requirements"
    pip download --python-version 3.12 --platform manylinux_2_28_x86_64 \
      --platform manylinux2014_x86_64 --only-binary=:all: --no-deps -d "$dir" \
      -r "$dir/.requirements"
    pip wheel --no-deps -w "$dir" "$(grep '^promise==' "$here/accelerator_requirements.txt")"
    ls "$dir"/*.whl | wc -l | xargs echo "wheels in $dir:"
    ;;
  install)
    python - "$dir" <<'PY'
import glob, importlib.metadata as md, os, re, subprocess, sys
wheels, todo = sorted(glob.glob(os.path.join(sys.argv[1], "*.whl"))), []
for w in wheels:
  name = re.sub(r"[-_.]+", "-", os.path.basename(w).split("-")[0]).lower()
  try:
    print(f"kept {name} {md.version(name)} (already installed)")
  except md.PackageNotFoundError:
    todo.append(w)
if todo:
  subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", *todo],
                 check=True)
print(f"installed {len(todo)} of {len(wheels)} wheels")
PY
    ;;
  *) echo "unknown command $cmd (download | install)" >&2; exit 2 ;;
esac
