#!/usr/bin/env bash
# Sourced by the scripts/device_*.sh that run through the run tool. The GPU image has jax,
# torch, torchaudio and no network: the wheels it lacks travel in the carry (.whl/*.whl,
# made by `make setup`; .whl/replay for the original's trainer) and go to one folder per
# machine.
#
# site_install [SITE [WHEEL_DIR...]]: install the wheels of each WHEEL_DIR (default .whl) into
# SITE (default /tmp/site), each wheel once per machine (SITE/.installed lists them: a later
# call on the same warm machine that carries more wheels installs only those; under a lock,
# so that scripts started at once install once), then export PYTHONPATH=.:SITE. $PY is the
# python (default python3).
site_install() {
  local site=${1:-/tmp/site}
  [ $# -gt 0 ] && shift
  [ $# -gt 0 ] || set -- .whl
  mkdir -p "$site"
  (
    flock 9
    touch "$site/.installed"
    wheels=()
    for dir in "$@"; do
      for wheel in "$dir"/*.whl; do
        [ -e "$wheel" ] || continue
        grep -qxF "$(basename "$wheel")" "$site/.installed" || wheels+=("$wheel")
      done
    done
    [ ${#wheels[@]} -gt 0 ] || exit 0
    "${PY:-python3}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target "$site" "${wheels[@]}" 2>&1 | tail -2
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "site_install: pip failed into $site" >&2; exit 1; }
    for wheel in "${wheels[@]}"; do basename "$wheel"; done >>"$site/.installed"
  ) 9>"$site.lock" || return 1
  export PYTHONPATH=.:$site
}
