#!/usr/bin/env bash
# A lockbench worker (protocol: bench/cmd/lockbench/worker.go) that locks
# through the nfslockfs mount as a shell script does:
#
#     bash bashlock.sh PATH    exec 9>"PATH" takes the lock, exec 9>&- releases it
#
# Times are bash's $EPOCHREALTIME (CLOCK_REALTIME, in µs), comparable
# between two of these workers on one machine; "loop" is not spoken.
set -u
path=$1
while read -r cmd arg _; do
  case $cmd in
  lock)
    start=${EPOCHREALTIME/./}
    if exec 9>"$path"; then
      t=${EPOCHREALTIME/./}
      echo "ok ${t}000 ${start}000"
    else
      echo "err open $path failed"
    fi
    ;;
  unlock)
    t=${EPOCHREALTIME/./}
    exec 9>&-
    echo "ok ${t}000"
    ;;
  cycles)
    t0=${EPOCHREALTIME/./}
    for ((i = 0; i < arg; i++)); do
      exec 9>"$path" || break
      exec 9>&-
    done
    t1=${EPOCHREALTIME/./}
    echo "ok $(((t1 - t0) * 1000))"
    ;;
  *) echo "err bad command $cmd" ;;
  esac
done
