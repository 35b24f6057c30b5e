#!/bin/sh
# Installs the Debian packages aec needs, only those that are missing.
# Used by `make demo`, `make check` and CI; safe to run again. With --torch
# it also installs the PyTorch oracle's packages (`make check-torch`).
set -e
# Open MPI: aec --mpi's libaert_mpi.a, and the tests that train under mpirun.
# man-db: the install test renders the man pages with `man -l`.
PACKAGES="gcc make re2c check pkg-config zlib1g-dev libcairo2-dev dataset-fashion-mnist openmpi-bin libopenmpi-dev man-db"
# tests/torch/check_torch.py: Debian's PyTorch, and the OpenMP OpenBLAS it runs on.
TORCH_PACKAGES="python3-torch libopenblas0-openmp"
if [ "$1" = "--torch" ]; then PACKAGES="$PACKAGES $TORCH_PACKAGES"; fi
if [ -n "$AEC_EXTRA_PACKAGES" ]; then PACKAGES="$PACKAGES $AEC_EXTRA_PACKAGES"; fi

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: need root (or sudo) to install:$missing" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
