#!/usr/bin/env bash
# Idempotent set-up, called by `make test` and `make reports`:
#   1. the Debian packages that carry the embedded data, and Prometheus (prometheus, promtool)
#      for the service's monitoring and its alert tests (where apt-get can be used),
#   2. the virtual environment ($VENV, default .venv) with requirements.txt and the project
#      itself (editable: any Jupyter kernel of the environment imports cvtasks and config),
#   3. the project's Jupyter kernel "cvtasks", registered inside the environment.
# The second run is fast: packages are checked with dpkg-query, and pip runs only when
# requirements.txt or pyproject.toml changed since the last successful install (hash kept in the venv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
DEBS="dataset-fashion-mnist openclipart-svg openclipart-png libcairo2 prometheus"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in $DEBS; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
  done
fi
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && $SUDO true 2>/dev/null; then
    echo "[setup] installing Debian packages:$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
  else
    echo "[setup] warning: Debian packages missing ($missing) and apt-get is not usable;" \
         "the tasks fall back to their online loaders (see README)." >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing requirements.txt into $VENV (the first time takes several minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r requirements.txt
  "$VENV/bin/python" -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
kernel="$VENV/share/jupyter/kernels/cvtasks/kernel.json"
if ! grep -q "$(cd "$VENV" && pwd)/bin/python" "$kernel" 2>/dev/null; then
  echo "[setup] registering the Jupyter kernel 'cvtasks' in $VENV"
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name cvtasks --display-name "Python (cvtasks)" >/dev/null
fi
echo "[setup] ready: $VENV"
