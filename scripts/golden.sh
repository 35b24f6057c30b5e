#!/bin/sh
# make golden — regenerates the reviewed C of every tests/golden/NAME.ae into
# tests/golden/NAME.c (aec run from tests/golden, default options, so the
# files do not depend on where the repository lives) and says which changed.
# Run it on purpose, after an intended change to the emitter; then review
# `git diff tests/golden` and commit the new files with the change.
set -e
AEC=$(cd "$(dirname "${1:-build/aec}")" && pwd)/$(basename "${1:-build/aec}")
cd "$(dirname "$0")/../tests/golden"
changed=0
for model in *.ae; do
  name=${model%.ae}
  "$AEC" "$model" -o "$name.new.c"
  if [ -f "$name.c" ] && cmp -s "$name.c" "$name.new.c"; then
    rm -f "$name.new.c"
    echo "golden: tests/golden/$name.c unchanged"
  else
    if [ -f "$name.c" ]; then
      lines=$(diff "$name.c" "$name.new.c" | grep -c '^[<>]' || true)
      echo "golden: tests/golden/$name.c CHANGED ($lines lines differ)"
    else
      echo "golden: tests/golden/$name.c NEW"
    fi
    mv "$name.new.c" "$name.c"
    changed=$((changed + 1))
  fi
done
if [ "$changed" -gt 0 ]; then
  echo "golden: $changed file(s) rewritten; review them with: git diff tests/golden"
fi
