#!/bin/sh
# Runs aec under valgrind on every example (writing C, and --summary) and on
# every bad file of tests/bad/ (the error paths); fails on any leak or memory
# error. Usage: scripts/valgrind-aec.sh [path/to/aec]
AEC=${1:-build/aec}
# A path that is not a program would make every valgrind run fail in the same
# way, with no leak to report: say so instead of passing.
if [ ! -f "$AEC" ] || [ ! -x "$AEC" ]; then
  echo "valgrind-aec: $AEC is not an executable file (give the path of aec, such as build/aec)" >&2
  exit 1
fi
tmp=$(mktemp -d)
status=0
for f in examples/*.ae tests/bad/*.ae; do
  for opts in "-o $tmp/out.c" "--summary"; do
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=9 \
      "$AEC" "$f" $opts >/dev/null 2>"$tmp/err"
    rc=$?
    # 9: valgrind found errors; 126, 127: valgrind could not start the program.
    if [ $rc -eq 9 ] || [ $rc -ge 126 ] || grep -q "==[0-9]*==" "$tmp/err"; then
      echo "valgrind-aec: $f $opts:"; cat "$tmp/err"; status=1
    fi
  done
done
rm -rf "$tmp"
[ $status -eq 0 ] && echo "valgrind-aec: no leaks or memory errors in aec on $(ls examples/*.ae tests/bad/*.ae | wc -l) files"
exit $status
