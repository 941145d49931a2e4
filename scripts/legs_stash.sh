#!/usr/bin/env bash
# Here (not on the GPU machine): move the tracked legs/model.tar out of the working tree and
# back, around the `corpus` call of scripts/device_train_default_leg.sh (the run tool's
# working tree is <= 64 MiB: 33 MiB tracked + 18 MiB model.tar + 29 MiB of TTS carry is too
# much), and rebuild legs/model.tar from a call's returned parts. legs/README.md has the
# whole sequence.
#   bash scripts/legs_stash.sh out            legs/model.tar -> <git dir>/legs-stash/
#   bash scripts/legs_stash.sh back           and back (checks it is the committed one)
#   bash scripts/legs_stash.sh assemble DIR   DIR/model.tar.part-* (or DIR/model.tar)
#                                             -> legs/model.tar, checked with tar -t
set -euo pipefail
cd "$(dirname "$0")/.."
stash=$(git rev-parse --absolute-git-dir)/legs-stash
case "${1:-}" in
out)
  [ -f legs/model.tar ] || { echo "no legs/model.tar here (leg 1? already out?)"; exit 1; }
  [ -e "$stash/model.tar" ] && { echo "$stash/model.tar exists: run 'back' first"; exit 1; }
  mkdir -p "$stash" && mv legs/model.tar "$stash/model.tar"
  echo "legs/model.tar -> $stash/model.tar (put it back: bash scripts/legs_stash.sh back)"
  ;;
back)
  [ -f "$stash/model.tar" ] || { echo "nothing stashed in $stash"; exit 1; }
  [ -e legs/model.tar ] && { echo "legs/model.tar exists already; stash kept"; exit 1; }
  mv "$stash/model.tar" legs/model.tar
  if git ls-files --error-unmatch legs/model.tar >/dev/null 2>&1 \
      && ! git diff --quiet -- legs/model.tar; then
    echo "WARNING: legs/model.tar differs from the committed one"
  fi
  echo "legs/model.tar back ($(du -h legs/model.tar | cut -f1))"
  ;;
assemble)
  d=${2:?assemble DIR: the folder with model.tar.part-* (or model.tar)}
  if compgen -G "$d/model.tar.part-*" >/dev/null; then
    cat "$d"/model.tar.part-* > legs/model.tar.new
  elif [ -f "$d/model.tar" ]; then
    cp "$d/model.tar" legs/model.tar.new
  else
    echo "no $d/model.tar.part-* nor $d/model.tar"; exit 1
  fi
  entries=$(tar -tf legs/model.tar.new) && grep -q '^model/' <<<"$entries" \
    || { rm -f legs/model.tar.new; echo "not a model tar (no model/ inside)"; exit 1; }
  mv legs/model.tar.new legs/model.tar
  echo "legs/model.tar: $(du -h legs/model.tar | cut -f1), $(tar -tf legs/model.tar | wc -l) entries"
  ;;
*) echo "usage: $0 out | back | assemble DIR"; exit 2 ;;
esac
