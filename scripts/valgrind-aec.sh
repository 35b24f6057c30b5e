#!/bin/sh
# Runs aec under valgrind on every example (writing C, and --summary) and on
# every bad file of tests/bad/ (the error paths); fails on any leak or memory
# error. Usage: scripts/valgrind-aec.sh [path/to/aec]
AEC=${1:-build/aec}
tmp=$(mktemp -d)
status=0
for f in examples/*.ae tests/bad/*.ae; do
  for opts in "-o $tmp/out.c" "--summary"; do
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=9 \
      "$AEC" "$f" $opts >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 9 ] || grep -q "==[0-9]*==" "$tmp/err"; then
      echo "valgrind-aec: $f $opts:"; cat "$tmp/err"; status=1
    fi
  done
done
rm -rf "$tmp"
[ $status -eq 0 ] && echo "valgrind-aec: no leaks or memory errors in aec on $(ls examples/*.ae tests/bad/*.ae | wc -l) files"
exit $status
