#!/usr/bin/env bash
# Synthetic corpus on the GPU machine (no internet, no apt) from carried Debian packages.
#
# Here (once; needs Debian's apt and PyPI):   bash scripts/device_synth.sh --fetch
#   -> .debs/*.deb (espeak-ng, flite and their library chain), .whl/synth/*.whl (soundfile,
#      soxr, cffi, pycparser, tqdm for CPython 3.12; only those not in .whl), .whl/*.whl (the training code's
#      packages that the GPU image lacks, CPython 3.12; openai-whisper is built here as a
#      pure-python wheel, PyPI has only its sdist) and the Austen text cache
#      .cache/synth/austen-v<N>.json.gz (the generator's default path); ~25 MiB in all.
# There (run tool, carry [".debs", ".whl", ".cache/synth"]):
#   bash scripts/device_synth.sh --out /tmp/synth/train --hours 10 --split train --seed 0
#   (any `lcasr-jax data synth` arguments; --workers defaults to all cores).
# Packages are unpacked with dpkg -x into $SYNTH_ROOT (default /tmp/synthroot); only the
# generator sees them (LD_LIBRARY_PATH, ESPEAK_DATA_PATH, PYTHONPATH are set for it alone).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${SYNTH_ROOT:-/tmp/synthroot}
DEBS=${SYNTH_DEBS:-.debs}
WHL=${SYNTH_WHL:-.whl/synth}
TEXT=${SYNTH_TEXT:-}  # default: the generator's own cache path under .cache/synth
PY=${PY:-python3}
DEB_PKGS=(espeak-ng libespeak-ng1 espeak-ng-data libpcaudio0 libsonic0 flite libflite1
  libasound2 libasound2-data libpulse0 libsndfile1 libasyncns0 libflac12 libogg0 libvorbis0a
  libvorbisenc2 libopus0 libmpg123-0 libmp3lame0 libx11-xcb1 libx11-6 libxcb1 libxau6
  libxdmcp6 libbsd0 libmd0 libdbus-1-3 libsystemd0 libapparmor1)
WHEELS=(soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1 pycparser==3.12 tqdm==4.70.1)
# What the training/evaluation code needs and the GPU image lacks (README, "GPU machines"),
# into .whl/ itself: the training scripts install .whl/*.whl.
GPU_WHEELS=(omegaconf==2.4.0 ml_collections==1.1.0 soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1
  pycparser==3.12 jiwer==4.0.0 RapidFuzz==3.14.6 regex==2026.11.15 more-itertools==11.2.1
  tensorboardX==2.6.5)
SDIST_WHEELS=(openai-whisper==20250625)  # scoring's normaliser (eval/normalize.py)

if [ "${1:-}" = "--fetch" ]; then
  mkdir -p "$DEBS" "$WHL"
  chmod 777 "$DEBS"  # apt-get download drops privileges to _apt
  (cd "$DEBS" && apt-get download -qq "${DEB_PKGS[@]}")
  plats=()
  for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
           manylinux2014_x86_64 manylinux1_x86_64; do plats+=(--platform "$p"); done
  ${PIP:-.venv/bin/python -m pip} download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp "${plats[@]}" -d "$(dirname "$WHL")" \
    "${GPU_WHEELS[@]}"
  # each wheel once (the call carries <= 64 MiB): .whl/synth holds only what .whl lacks
  for w in "${WHEELS[@]}"; do
    n=${w%%==*}; v=${w##*==}
    ls "$(dirname "$WHL")/${n}-${v}-"*.whl >/dev/null 2>&1 && continue
    ${PIP:-.venv/bin/python -m pip} download -q --no-deps --only-binary=:all: \
      --python-version 3.12 --implementation cp "${plats[@]}" -d "$WHL" "$w"
  done
  ${PIP:-.venv/bin/python -m pip} wheel -q --no-deps -w "$(dirname "$WHL")" "${SDIST_WHEELS[@]}"
  ${PYBIN:-.venv/bin/python} -m lcasr_jax.cli data synth --out /tmp --prepare-text \
    ${TEXT:+--text "$TEXT"}
  du -shc "$DEBS" "$(dirname "$WHL")" .cache/synth
  exit 0
fi

if [ ! -f "$ROOT/.ready" ]; then
  mkdir -p "$ROOT/lib"
  for f in "$DEBS"/*.deb; do dpkg -x "$f" "$ROOT"; done
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$ROOT/site" --find-links "$WHL" --find-links "$(dirname "$WHL")" "${WHEELS[@]}"
  # The engines always come from the carried packages; their dependencies only where the
  # system lacks that soname (a newer system library is kept).
  have=$(ldconfig -p 2>/dev/null | awk '{print $1}')
  for so in "$ROOT"/usr/lib/x86_64-linux-gnu/*.so.* "$ROOT"/lib/x86_64-linux-gnu/*.so.*; do
    [ -e "$so" ] || continue
    name=$(basename "$so")
    case "$name" in
      libespeak-ng*|libflite*|libpcaudio*|libsonic*) ln -sf "$so" "$ROOT/lib/$name" ;;
      *) grep -qxF "$name" <<<"$have" || ln -sf "$so" "$ROOT/lib/$name" ;;
    esac
  done
  touch "$ROOT/.ready"
fi
export_env=(
  LD_LIBRARY_PATH="$ROOT/lib:$ROOT/usr/lib/x86_64-linux-gnu/pulseaudio"
  ESPEAK_DATA_PATH="$ROOT/usr/lib/x86_64-linux-gnu"
  PYTHONPATH="$ROOT/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
)
exec env "${export_env[@]}" "$PY" -m lcasr_jax.cli data synth ${TEXT:+--text "$TEXT"} "$@"
