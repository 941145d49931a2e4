#!/usr/bin/env bash
# Create .venv with the pinned, tested package set (CPU). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# torch first: the CPU wheel on local disk (any other version downloads a CUDA build).
"${pip[@]}" torch==2.13.0
"${pip[@]}" -r requirements/pins-cpu.txt
"${pip[@]}" --no-deps -r requirements/pins-nodeps.txt
"${pip[@]}" --no-deps -e .
