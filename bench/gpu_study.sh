#!/usr/bin/env bash
# The whole study (Question 1A + the three Question 2 sweeps) on one GPU machine without internet.
#
#   bench/gpu_study.sh [--data DIR] [--wheels DIR] [--site DIR] [--backend jax|torch] [--mps]
#                      [--install-only] [STUDY OPTIONS]
#
#   --data DIR      the four Fashion-MNIST IDX files (.gz or raw)
#   --wheels DIR    made by bench/gpu_wheels.sh: when keras, tensorboard, pyyaml or the project are not
#                   importable, the wheels of DIR whose packages this Python lacks are installed
#                   (pip --no-index --no-deps --target) into a folder put on PYTHONPATH
#   --site DIR      that folder (default ~/.cache/fmstudy/gpu-site, or $GPU_STUDY_SITE)
#   --backend B     Keras backend, jax (default) or torch: the GPU machines have no TensorFlow
#   --mps           start NVIDIA's MPS daemon (if it is not running) so the trials packed on the GPU
#                   run their kernels side by side instead of taking turns; without it, or where it
#                   does not start, they time-share the GPU (a warning says so)
#   --install-only  set up and check the environment (one training step of the study's CNN), run nothing
#   STUDY OPTIONS   --slice, --parallel N, --sample K, --out DIR, --epochs N, --no-checkpoints,
#                   --packed (trials of one shape and optimizer in one JAX program; jax only),
#                   --pad-filters 3,4 (packed: sweep C's 81 shapes as 9 programs, conv3 and conv4 padded),
#                   --q1b (then Question 1B's AutoKeras search; its wheels: gpu_wheels.sh --nas), ...
#                   (python -m bench.gpu_study --help)
#
# Needs: Python 3.11 or later with a GPU build of JAX or PyTorch, and this checkout's bench/ folder.
set -euo pipefail
# The comment block above, as help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
WHEELS=""
SITE="${GPU_STUDY_SITE:-${XDG_CACHE_HOME:-$HOME/.cache}/fmstudy/gpu-site}"
BACKEND="${KERAS_BACKEND:-jax}"
INSTALL_ONLY=0
MPS=0
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="${2:?--wheels needs a folder}"; shift 2 ;;
    --site) SITE="${2:?--site needs a folder}"; shift 2 ;;
    --backend) BACKEND="${2:?--backend needs jax or torch}"; shift 2 ;;
    --mps) MPS=1; shift ;;
    --install-only) INSTALL_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
die() { echo "error: $*" >&2; exit 2; }
warn() { echo "gpu-study: warning: $*" >&2; }
case "$BACKEND" in
  jax) BACKEND_MODULE=jax ;;
  torch) BACKEND_MODULE=torch ;;
  tensorflow) BACKEND_MODULE=tensorflow ;;
  *) die "--backend $BACKEND: expected jax or torch" ;;
esac
export KERAS_BACKEND="$BACKEND"
# The bench (and, from a checkout, the project's source) come from here; a bare bench/ copy uses the wheel.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
NEEDS="import keras, yaml, tensorboard, numpy, components.cnn.train, components.sweeps"
# --q1b (Question 1B's AutoKeras search) needs AutoKeras and KerasTuner too (gpu_wheels.sh --nas).
case " ${ARGS[*]-} " in *" --q1b "*) NEEDS="$NEEDS, autokeras, keras_tuner, components.nas.search" ;; esac

usable() { "$PYTHON" -c "$NEEDS" >/dev/null 2>&1; }

"$PYTHON" -c "import $BACKEND_MODULE" >/dev/null 2>&1 || die "$PYTHON has no $BACKEND_MODULE: install the GPU build of the backend, or choose --backend"
if ! usable; then
  [ -d "$SITE" ] && export PYTHONPATH="$PYTHONPATH:$SITE"
  if ! usable; then
    [ -n "$WHEELS" ] || die "keras, tensorboard, pyyaml, the project (or with --q1b autokeras) are missing for $PYTHON; give --wheels DIR (made by bench/gpu_wheels.sh)"
    [ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
    # Only what this Python lacks: its own numpy, h5py, ... stay (the GPU backend was built against them).
    mapfile -t missing < <("$PYTHON" - "$WHEELS" <<'PY'
import importlib.metadata as md
import pathlib
import sys

for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    try:
        md.version(wheel.name.split("-")[0])
    except md.PackageNotFoundError:
        print(wheel)
PY
)
    [ ${#missing[@]} -gt 0 ] || die "$WHEELS holds nothing this Python lacks, yet: $("$PYTHON" -c "$NEEDS" 2>&1 | tail -1)"
    echo "gpu-study: installing ${#missing[@]} wheels from $WHEELS into $SITE"
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --upgrade --target "$SITE" "${missing[@]}"
    case ":$PYTHONPATH:" in *":$SITE:"*) ;; *) export PYTHONPATH="$PYTHONPATH:$SITE" ;; esac
    "$PYTHON" -c "$NEEDS" || die "a module is still missing (above); was $WHEELS made for this Python ($("$PYTHON" -V))?"
  fi
fi

# A few kernels on the GPU through the backend: proves the device (and the MPS daemon, if started) answers.
gpu_probe() {
  timeout 120 "$PYTHON" -c "
import keras, numpy as np
x = keras.ops.convert_to_tensor(np.ones((256, 256), 'float32'))
total = float(keras.ops.sum(keras.ops.matmul(x, x)))
print('ok' if total == 256.0 ** 3 else f'wrong sum {total}', keras.backend.backend(), end=' ')
if keras.backend.backend() == 'jax':
    import jax; print(jax.devices())
elif keras.backend.backend() == 'torch':
    import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')
" 2>&1 | tail -1
}
MPS_STARTED=0
stop_mps() { [ "$MPS_STARTED" = 1 ] && echo quit | nvidia-cuda-mps-control >/dev/null 2>&1; MPS_STARTED=0; }
trap stop_mps EXIT
if [ "$MPS" = 1 ]; then
  if ! command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
    warn "--mps: nvidia-cuda-mps-control not found; the trials time-share the GPU"
  else
    export CUDA_MPS_PIPE_DIRECTORY="${CUDA_MPS_PIPE_DIRECTORY:-/tmp/fmstudy-mps/pipe}"
    export CUDA_MPS_LOG_DIRECTORY="${CUDA_MPS_LOG_DIRECTORY:-/tmp/fmstudy-mps/log}"
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if echo get_server_list | nvidia-cuda-mps-control >/dev/null 2>&1; then  # fails when no daemon answers
      echo "gpu-study: an MPS daemon already runs ($CUDA_MPS_PIPE_DIRECTORY)"
    elif nvidia-cuda-mps-control -d; then
      MPS_STARTED=1
      if probe="$(gpu_probe)" && [ -n "$probe" ] && [ "${probe#Traceback}" = "$probe" ] && [[ "$probe" == ok* ]]; then
        echo "gpu-study: MPS daemon started; probe: $probe"
      else
        stop_mps
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
        warn "--mps: the backend failed under MPS (${probe:-no answer}); the trials time-share the GPU"
      fi
    else
      warn "--mps: nvidia-cuda-mps-control -d failed; the trials time-share the GPU"
    fi
  fi
fi

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -L
else
  warn "no nvidia-smi; trials run wherever $BACKEND_MODULE puts them (the CPU?)"
fi
# One training step of the study's CNN: a Keras that does not fit the backend fails here, not in 170 trials.
"$PYTHON" -c "
import sys, keras, numpy as np
from components.cnn.models import build_study_cnn
m = build_study_cnn()
m.compile(optimizer='nadam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
m.fit(np.zeros((256, 28, 28, 1), 'float32'), np.zeros(256, 'int32'), batch_size=128, epochs=1, verbose=0)
print('gpu-study: Python', sys.version.split()[0], 'keras', keras.__version__, 'backend', keras.backend.backend(),
      '- one training step of the study CNN ran')
" || die "the study's CNN does not train with keras $("$PYTHON" -c 'import keras; print(keras.__version__)') on $BACKEND (above)"
[ "$INSTALL_ONLY" = 1 ] && exit 0
status=0
"$PYTHON" -m bench.gpu_study ${ARGS[@]+"${ARGS[@]}"} || status=$?
exit "$status"
