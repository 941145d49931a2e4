#!/usr/bin/env bash
# Issue 24's acceptance: in a clone with nothing beside it, `make test` passes twice in a row
# while another `make test` (a second clone) runs beside it on the same machine.
# Usage: bash scripts/make_test_side_by_side.sh [REV (HEAD)] [ROOT (/tmp/side_by_side)]
# Clones this repository twice into ROOT/{a,b}/lcasr-jax, runs `make test` twice in each at
# once; ROOT/summary.txt gets each run's exit status, seconds and pytest's last line.
# About 80 minutes on a 2-core machine.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
REV=${1:-HEAD}
root=${2:-/tmp/side_by_side}
rev=$(git -C "$repo" rev-parse "$REV")
rm -rf "$root" && mkdir -p "$root/a" "$root/b"
for c in a b; do
  git clone -q "$repo" "$root/$c/lcasr-jax" && git -C "$root/$c/lcasr-jax" checkout -q "$rev"
done
echo "rev $rev start $(date -u +%FT%TZ)" >"$root/summary.txt"
twice() {  # clone name
  for i in 1 2; do
    s=$(date +%s)
    (cd "$root/$1/lcasr-jax" && make test >"$root/$1$i.log" 2>&1)
    echo "$1$i rc=$? $(($(date +%s) - s))s: $(grep -E 'passed|failed' "$root/$1$i.log" | tail -1)" \
      >>"$root/summary.txt"
  done
}
twice b & twice a; wait
cat "$root/summary.txt"
! grep -q "rc=[^0]" "$root/summary.txt"
