#!/bin/sh
# sweep.sh — the lecture's hyperparameter slide: trains examples/simple.ae for
# code sizes 2 to 128 (aec -D code=N) and plots the test loss against the
# code size.
#
#   sh examples/sweep.sh                 # 20 epochs each, as simple.ae says
#   EPOCHS=5 OUT=/tmp/sweep sh examples/sweep.sh
#
# Writes $OUT/sweep.csv (code,test_bce) and $OUT/sweep.png; prints the
# figures `test_bce.N V` on standard output. Run from the repository root
# after `make`.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AEC=${AEC:-$ROOT/build/aec}
OUT=${OUT:-$ROOT/build/sweep}
SIZES=${SIZES:-"2 4 8 16 32 64 128"}
mkdir -p "$OUT"
cd "$OUT"
echo "code,test_bce" > sweep.csv
for code in $SIZES; do
  "$AEC" "$ROOT/examples/simple.ae" -D code="$code" -o "simple_$code"
  if [ -n "${EPOCHS:-}" ]; then set -- --epochs "$EPOCHS"; else set --; fi
  echo "sweep: code $code" >&2
  ./"simple_$code" train "$@" --checkpoint "simple_$code.safetensors" > "train_$code.out"
  loss=$(awk '$1 == "test.recon" { v = $2 } END { print v }' "train_$code.out")
  echo "$code,$loss" >> sweep.csv
  echo "test_bce.$code $loss"
done
# Any of the programs draws the chart: plot-xy needs no model.
first=$(echo $SIZES | awk '{ print $1 }')
./"simple_$first" plot-xy --csv sweep.csv -o sweep.png
