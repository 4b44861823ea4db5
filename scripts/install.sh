#!/usr/bin/env bash
# Create or refresh VENV from uv.lock with PYTHON: what `make install` runs.
#   scripts/install.sh VENV PYTHON
# uv installs from PyPI alone: it reads neither pip's configuration nor PIP_FIND_LINKS
# (a mirror is set with UV_INDEX_URL). The stamp VENV/.installed is written last, so a
# VENV without it is an interrupted install and is rebuilt, never used.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: scripts/install.sh VENV PYTHON}
python=${2:?usage: scripts/install.sh VENV PYTHON}
supported="3.10 3.11 3.12 3.13"   # requires-python in pyproject.toml; TensorFlow 2.21's wheels

version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || {
  echo "error: PYTHON=$python is not a Python interpreter that runs here; expected Python $supported" >&2; exit 2; }
case " $supported " in
  *" $version "*) ;;
  *) echo "error: PYTHON=$python is Python $version; expected one of $supported (e.g. make PYTHON=python3.12 ...)" >&2
     exit 2 ;;
esac

stamp="$venv/.installed"
if [ -d "$venv" ] && [ ! -f "$stamp" ]; then
  echo "install: $venv has no completion stamp (an interrupted install); rebuilding it"
  rm -rf "$venv"
elif [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" != "python $version" ]; then
  echo "install: $venv was built with $(head -n1 "$stamp"), not Python $version; rebuilding it"
  rm -rf "$venv"
fi
rm -f "$stamp"

uv_version=$(grep -A1 '^name = "uv"$' uv.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
fail() {
  echo "error: $1 failed (the message above says why); check the network or the package index (UV_INDEX_URL), then run 'make install' again" >&2
  exit 1
}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv" || fail "creating $venv with $python"
if [ "$("$venv/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$uv_version" ]; then
  # The one pip step: bootstrap the pinned uv into the venv (uv.lock keeps it there).
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version" || fail "installing uv $uv_version"
fi
# --compile-bytecode: uv leaves the .pyc files to the first import, which cannot write them
# where PYTHONDONTWRITEBYTECODE is set (many CI images and containers): every process then
# compiled TensorFlow's ~2,500 modules again, about 7 CPU-seconds of each trial's start.
UV_PROJECT_ENVIRONMENT="$venv" "$venv/bin/uv" sync --frozen --quiet --compile-bytecode --no-python-downloads --python "$venv/bin/python" \
  || fail "installing the locked dependencies (uv.lock)"
echo "python $version" > "$stamp"
