#!/usr/bin/env bash
# Sourced by the scripts/device_*.sh that run through the run tool. What comes back from
# $OUT: at most 8 files (hidden ones, e.g. lock files, count too), each <= 16 MiB, <= 64 MiB
# in all, at most 2 folders deep, names of letters, digits, '.', '_' and '-'; anything
# beyond is dropped silently. So: results tables, eval dirs and lock files live under $WORK,
# and $OUT gets the few files named in each script's header.

# out_split FILE: a FILE over 15 MiB becomes FILE.part-aa, FILE.part-ab, ... (split -b 15M);
# reassemble here with `cat FILE.part-* > FILE`.
out_split() {
  local f=$1
  [ -f "$f" ] || return 0
  if [ "$(stat -c %s "$f")" -gt $((15 * 1024 * 1024)) ]; then
    split -b 15M "$f" "$f.part-" && rm "$f"
    echo "$(basename "$f") split in 15 MiB parts: $(cd "$(dirname "$f")" \
      && ls "$(basename "$f")".part-* | tr '\n' ' ')(cat them)"
  fi
}

# out_pack TGZ DIR [ENTRY...]: tar -czf TGZ -C DIR ENTRY... (default: all of DIR), lock files
# left out; split when big.
out_pack() {
  local tgz=$1 dir=$2; shift 2
  [ -d "$dir" ] || { echo "out_pack: no $dir"; return 0; }
  [ $# -gt 0 ] || set -- .
  tar -czf "$tgz" --exclude='*.lock' --exclude='.*.lock' -C "$dir" "$@" || true
  out_split "$tgz"
}

# out_check: split what is over 15 MiB, then say whether $OUT is within the limits.
out_check() {
  local f n
  while IFS= read -r f; do out_split "$f"; done < <(find "$OUT" -type f -size +15M)
  n=$(find "$OUT" -type f | wc -l)
  if [ "$n" -gt 8 ]; then
    echo "WARNING: $n files under $OUT, only 8 come back:"; find "$OUT" -type f | sort
  else
    echo "\$OUT: $n files ($(du -sh "$OUT" | cut -f1)): $(cd "$OUT" && find . -type f | sort | tr '\n' ' ')"
  fi
}
