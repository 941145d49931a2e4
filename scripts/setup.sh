#!/usr/bin/env bash
# Set up a fresh machine: Debian packages for the synthetic corpus (espeak-ng, flite, the
# Austen texts), then .venv with the pinned, tested Python package set (CPU). Idempotent.
# LCASR_SKIP_APT=1 skips the Debian step (the synth tests then skip with a reason).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
if [ "${LCASR_SKIP_APT:-0}" != "1" ]; then
  bash scripts/install_synth_deps.sh
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# torch first: the CPU wheel on local disk (any other version downloads a CUDA build).
"${pip[@]}" torch==2.13.0
"${pip[@]}" -r requirements/pins-cpu.txt
"${pip[@]}" --no-deps -r requirements/pins-nodeps.txt
"${pip[@]}" --no-deps -e .
