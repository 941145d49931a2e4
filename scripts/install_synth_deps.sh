#!/usr/bin/env bash
# Debian packages for `lcasr-jax data synth` (offline synthetic speech corpus). Idempotent;
# run as root (or with sudo). Installs espeak-ng and flite (libraries + voices) and unpacks
# the r-cran-janeaustenr data (Austen novels) to /opt/lcasr-jax/janeaustenr without pulling
# in R itself, and festival with its diphone voices (SYNTH_FESTIVAL=0 skips those).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs=(espeak-ng libespeak-ng1 espeak-ng-data flite libflite1)
[ "${SYNTH_FESTIVAL:-1}" = "1" ] && pkgs+=(festival festvox-kallpc16k festvox-kdlpc16k)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
austen_dirs=(/usr/lib/R/site-library/janeaustenr /opt/lcasr-jax/janeaustenr/usr/lib/R/site-library/janeaustenr)
have_austen=0
for d in "${austen_dirs[@]}"; do [ -f "$d/data/Rdata.rdb" ] && have_austen=1; done
if [ ${#missing[@]} -eq 0 ] && [ $have_austen -eq 1 ]; then
  echo "install_synth_deps: all present"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ $have_austen -eq 0 ]; then
  tmp=$(mktemp -d)
  chmod 777 "$tmp"  # apt-get download drops privileges to _apt
  (cd "$tmp" && apt-get download -qq r-cran-janeaustenr)
  $SUDO mkdir -p /opt/lcasr-jax/janeaustenr
  $SUDO dpkg-deb -x "$tmp"/r-cran-janeaustenr_*.deb /opt/lcasr-jax/janeaustenr
  rm -rf "$tmp"
fi
echo "install_synth_deps: done"
