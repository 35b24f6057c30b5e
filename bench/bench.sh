#!/usr/bin/env bash
# make bench: aec against the newest PyTorch from PyPI (in build/bench-venv;
# it brings large CUDA libraries), or against Debian's python3-torch with
# OpenBLAS when PyPI cannot be reached, eager and under torch.compile, and
# against JAX (jax[cpu] from PyPI) where it installs. Says which it used.
# Options go to bench/bench.py (--runs N, --no-compile, model files, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/bench-venv
python=""
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; then
  python="$venv/bin/python"
elif python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install -q --upgrade torch numpy; then
  python="$venv/bin/python"
else
  echo "bench: PyPI is out of reach; falling back to Debian's python3-torch with OpenBLAS" >&2
  AEC_EXTRA_PACKAGES="python3-torch python3-numpy libopenblas0-openmp" sh scripts/install-deps.sh
  python=/usr/bin/python3
fi
echo "bench: PyTorch from $("$python" -c 'import torch; print(torch.__version__, torch.__file__)')" >&2
# JAX (XLA on the CPU) is the second peer, where it installs, and FAISS (for
# bench/retrieval.py) joins it: into the same virtual environment. Without JAX
# the bench runs against PyTorch (eager and torch.compile) alone.
if [ "$python" = "$venv/bin/python" ] && ! "$python" -c "import jax" 2>/dev/null; then
  "$venv/bin/pip" install -q --upgrade "jax[cpu]" ||
    echo "bench: jax[cpu] did not install; PyTorch is the only peer" >&2
fi
if [ "$python" = "$venv/bin/python" ] && ! "$python" -c "import faiss" 2>/dev/null; then
  "$venv/bin/pip" install -q --upgrade faiss-cpu ||
    echo "bench: faiss-cpu did not install" >&2
fi
"$python" bench/bench.py "$@"
# Retrieval against FAISS, where bench/retrieval.py is there (another branch adds it).
if [ -f bench/retrieval.py ]; then
  "$python" bench/retrieval.py
fi
