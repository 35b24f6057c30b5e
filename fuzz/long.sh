#!/bin/sh
# fuzz/long.sh NAME SECONDS — runs one harness for SECONDS of wall clock,
# restarting after each crash (the inputs stay in build-fuzz/ as crash-*,
# timeout-*, oom-*), and prints the executions and crashes at the end.
B=build-fuzz; h=$1; total=$2
mkdir -p $B/corpus/$h $B/logs
start=$(date +%s); execs=0; crashes=0; runs=0
while :; do
  left=$((total - ($(date +%s) - start)))
  [ $left -le 5 ] && break
  runs=$((runs + 1))
  $B/fuzz_$h -max_total_time=$left -timeout=20 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix=$B/ $( [ -f fuzz/$h.dict ] && echo -dict=fuzz/$h.dict ) \
    $B/corpus/$h $B/seeds/$h > $B/logs/$h.$runs.log 2>&1
  rc=$?
  n=$(grep -o 'stat::number_of_executed_units: [0-9]*' $B/logs/$h.$runs.log | awk '{print $2}')
  execs=$((execs + ${n:-0}))
  [ $rc -ne 0 ] && crashes=$((crashes + 1)) && grep -E "SUMMARY|Test unit written" $B/logs/$h.$runs.log
done
echo "fuzz $h: $((($(date +%s) - start))) s, $execs executions, $crashes crashes (runs: $runs)"
