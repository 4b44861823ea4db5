#!/usr/bin/env bash
# The whole study (Question 1A + the three Question 2 sweeps) on one GPU machine without internet.
#
#   bench/gpu_study.sh --data DIR [--wheels DIR] [--venv DIR] [--backend jax|torch] [--install-only] [STUDY OPTIONS]
#
#   --data DIR      the four Fashion-MNIST IDX files (.gz or raw)
#   --wheels DIR    made by bench/gpu_wheels.sh: installed (pip --no-index) into a venv that also sees the
#                   system's packages, when keras, tensorboard, pyyaml or the project are not importable
#   --venv DIR      that venv (default ~/.cache/fmstudy/gpu-venv, or $GPU_STUDY_VENV)
#   --backend B     Keras backend, jax (default) or torch: the GPU machines have no TensorFlow
#   --install-only  set up and check the environment, run nothing
#   STUDY OPTIONS   --slice, --parallel N, --sample K, --out DIR, --epochs N, --no-checkpoints, ...
#                   (python -m bench.gpu_study --help)
#
# Needs: Python 3.11 with a GPU build of JAX or PyTorch, and this checkout's bench/ folder.
set -euo pipefail
# The comment block above, as help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
WHEELS=""
VENV="${GPU_STUDY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/fmstudy/gpu-venv}"
BACKEND="${KERAS_BACKEND:-jax}"
INSTALL_ONLY=0
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="${2:?--wheels needs a folder}"; shift 2 ;;
    --venv) VENV="${2:?--venv needs a folder}"; shift 2 ;;
    --backend) BACKEND="${2:?--backend needs jax or torch}"; shift 2 ;;
    --install-only) INSTALL_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
die() { echo "error: $*" >&2; exit 2; }
case "$BACKEND" in
  jax) BACKEND_MODULE=jax ;;
  torch) BACKEND_MODULE=torch ;;
  tensorflow) BACKEND_MODULE=tensorflow ;;
  *) die "--backend $BACKEND: expected jax or torch" ;;
esac
export KERAS_BACKEND="$BACKEND"
# The bench (and, from a checkout, the project's source) come from here; the wheel serves a bare bench/ copy.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
NEEDS="import keras, yaml, tensorboard, numpy, components.train, katib.spaces"

usable() { "$1" -c "$NEEDS" >/dev/null 2>&1; }

if ! usable "$PYTHON"; then
  if [ -x "$VENV/bin/python" ] && usable "$VENV/bin/python"; then
    PYTHON="$VENV/bin/python"
  else
    "$PYTHON" -c "import $BACKEND_MODULE" >/dev/null 2>&1 || die "$PYTHON has no $BACKEND_MODULE: install the GPU build of the backend, or choose --backend"
    [ -n "$WHEELS" ] || die "keras, tensorboard, pyyaml or the project are missing for $PYTHON; give --wheels DIR (made by bench/gpu_wheels.sh)"
    [ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
    echo "gpu-study: installing from $WHEELS into $VENV (the system's packages stay visible)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
    "$VENV/bin/python" -m pip install --quiet --no-index --find-links "$WHEELS" keras tensorboard pyyaml optuna
    pyver="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    extra=()
    if [ "$pyver" != "3.11" ]; then
      echo "gpu-study: warning: the project is made for Python 3.11, this is $pyver; installing it anyway" >&2
      extra=(--ignore-requires-python)
    fi
    "$VENV/bin/python" -m pip install --quiet --no-index --find-links "$WHEELS" --no-deps --force-reinstall --no-warn-conflicts ${extra[@]+"${extra[@]}"} fmstudy
    PYTHON="$VENV/bin/python"
    "$PYTHON" -c "$NEEDS" || die "$VENV still lacks a module (above); was $WHEELS made for Python $pyver?"
  fi
fi
"$PYTHON" -c "import $BACKEND_MODULE" >/dev/null 2>&1 || die "$PYTHON has no $BACKEND_MODULE (--backend $BACKEND)"

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -L
else
  echo "gpu-study: warning: no nvidia-smi; trials run wherever $BACKEND_MODULE puts them (the CPU?)" >&2
fi
echo "gpu-study: $("$PYTHON" -c 'import sys, keras; print("Python", sys.version.split()[0], "keras", keras.__version__, "backend", keras.backend.backend())')"
[ "$INSTALL_ONLY" = 1 ] && exit 0
exec "$PYTHON" -m bench.gpu_study ${ARGS[@]+"${ARGS[@]}"}
