#!/usr/bin/env bash
# The wheels bench/gpu_study.sh installs on a GPU machine that reaches no package index.
# Run it where PyPI is reachable, then copy DIR (and this checkout, or just bench/) to the GPU machine:
#
#   bench/gpu_wheels.sh DIR [--python-version 3.11] [--platform TAG]... [--no-lock] [--keras-only] [--nas]
#
# DIR gets keras, tensorboard and pyyaml with every dependency they have, as wheels for that Python
# and platform (binary ones included), at the versions requirements.lock pins (--no-lock: only keras
# pinned, for a Python the lock has no wheels for), plus a wheel of this project (fmstudy).
# --keras-only: just keras and the two dependencies a JAX or PyTorch GPU image usually lacks (namex,
# optree), pinned as the lock pins them: about 2.5 MB where the machine has numpy, h5py, ml-dtypes,
# rich, absl-py, tensorboard and pyyaml; gpu_study.sh installs only what that Python lacks anyway.
# --nas: also AutoKeras and KerasTuner, for gpu_study.sh --q1b (Question 1B's search; AutoKeras 3 runs on
# JAX, no TensorFlow needed). With --keras-only these come with the dependencies a JAX image usually
# lacks (KerasTuner imports grpcio, protobuf and six at start), about 10 MB more; pinned as the lock pins them.
# JAX and PyTorch are not included: the GPU machine brings its own CUDA builds.
set -euo pipefail
# The comment block above, as help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
DIR="${1:-}"
[ -n "$DIR" ] && [ "${DIR#-}" = "$DIR" ] || { usage; exit 2; }
shift
PYVER=3.11
PLATFORMS=()
USE_LOCK=1
KERAS_ONLY=0
NAS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYVER="${2:?}"; shift 2 ;;
    --platform) PLATFORMS+=("${2:?}"); shift 2 ;;
    --no-lock) USE_LOCK=0; shift ;;
    --keras-only) KERAS_ONLY=1; shift ;;
    --nas) NAS=1; shift ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
done
[ ${#PLATFORMS[@]} -gt 0 ] || PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64)
mkdir -p "$DIR"
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
if [ "$USE_LOCK" = 1 ]; then
  # The lock's torch is a local CPU build no index serves; the GPU machine has its own anyway.
  grep -v -E '^(torch|tensorflow|tensorflow[-_]cpu)==' "$ROOT/requirements.lock" > "$constraints"
else
  grep -E '^keras==' "$ROOT/requirements.lock" > "$constraints"
fi
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
download=("$PYTHON" -m pip download --quiet --only-binary=:all: --implementation cp --python-version "$PYVER"
          "${platform_args[@]}" -c "$constraints" -d "$DIR")
NAS_PACKAGES=(autokeras keras-tuner)
# What AutoKeras and KerasTuner import that a JAX GPU image usually lacks (its numpy, absl-py stay).
NAS_DEPS=(kt-legacy six dm-tree grpcio protobuf wrapt attrs requests urllib3 idna charset-normalizer certifi packaging)
if [ "$KERAS_ONLY" = 1 ]; then
  only=(keras namex optree)
  [ "$NAS" = 0 ] || only+=("${NAS_PACKAGES[@]}" "${NAS_DEPS[@]}")
  pattern="$(IFS='|'; echo "${only[*]}")"
  grep -E "^(${pattern})==" "$ROOT/requirements.lock" > "$constraints"
  "${download[@]}" --no-deps "${only[@]}"
  echo "gpu-wheels: $(ls "$DIR" | wc -l) wheels in $DIR for Python $PYVER ($(du -sh "$DIR" | cut -f1))"
  exit 0
fi
full=(keras tensorboard pyyaml)
[ "$NAS" = 0 ] || full+=("${NAS_PACKAGES[@]}")
"${download[@]}" "${full[@]}"
# Build the project's wheel from a copy, so no build/ folder is left in the checkout.
src="$(mktemp -d)"
trap 'rm -f "$constraints"; rm -rf "$src"' EXIT
cp -r "$ROOT/pyproject.toml" "$ROOT/components" "$ROOT/katib" "$ROOT/pipelines" "$src/"
"$PYTHON" -m pip wheel --quiet --no-deps -w "$DIR" "$src"
echo "gpu-wheels: $(ls "$DIR" | wc -l) wheels in $DIR for Python $PYVER ($(du -sh "$DIR" | cut -f1))"
