#!/usr/bin/env bash
# Build the trainer image (CPU or GPU variant); its name comes from components/core/settings.py.
#   images/build.sh [--variant cpu|gpu] [--base-image IMAGE] [--bake-data DIR] [--tag NAME]
#   --base-image local   builds and uses fmstudy/base-python:bookworm (images/base-debian.sh),
#                        for machines that cannot pull images.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
variant=cpu base="" bake="" tag=""
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant="$2"; shift 2 ;;
    --base-image) base="$2"; shift 2 ;;
    --bake-data) bake="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "error: build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$variant" in
  cpu) base="${base:-python:3.11-slim}"; tag="${tag:-$("$py" -c 'from components.core.settings import TRAINER_IMAGE as i; print(i)')}" ;;
  gpu) base="${base:-tensorflow/tensorflow:2.21.0-gpu}"; tag="${tag:-$("$py" -c 'from components.core.settings import TRAINER_GPU_IMAGE as i; print(i)')}" ;;
  *) echo "error: --variant $variant: expected cpu or gpu" >&2; exit 2 ;;
esac
if [ "$base" = local ]; then
  base=fmstudy/base-python:bookworm
  images/base-debian.sh "$base"
fi
rm -f images/data/*-ubyte*
if [ -n "$bake" ]; then
  ls "$bake"/train-images-idx3-ubyte* >/dev/null 2>&1 || { echo "error: --bake-data $bake: no Fashion-MNIST IDX files there" >&2; exit 2; }
  cp "$bake"/*-ubyte* images/data/
fi
trap 'rm -f images/data/*-ubyte*' EXIT
docker build -f images/Dockerfile --build-arg BASE_IMAGE="$base" --build-arg VARIANT="$variant" -t "$tag" .
echo "built $tag (variant $variant, base $base${bake:+, Fashion-MNIST baked in})"
