#!/usr/bin/env bash
# make bench: nfslockfs side by side with the lock tools a cluster user would
# otherwise pick. Installs the peers from Debian if missing, runs the Go
# benchmarks of the library and the mount and bench/cmd/lockbench, writes
# their results (Go benchmark format, for benchstat) to $RESULTS
# (docs/benchmarks.txt), and rewrites the generated tables of $DOC
# (docs/benchmarks.md) and the chart $PNG (docs/benchmarks.png). Needs root
# (FUSE mounts, UTS namespaces) and the binaries in $BIN (make build).
# Arguments go to `lockbench run` (-quick, -only REGEXP, -skip PART,...).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
BIN=${BIN:-bin}
BENCHTIME=${BENCHTIME:-1s}
BENCHCOUNT=${BENCHCOUNT:-6}
DOC=${DOC:-docs/benchmarks.md}
PNG=${PNG:-docs/benchmarks.png}
RESULTS=${RESULTS:-docs/benchmarks.txt}

peers=(util-linux liblockfile-bin lockfile-progs procmail python3-flufl.lock libfile-nfslock-perl gnuplot-nox strace)
missing=()
for p in "${peers[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *'ok installed'* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The policy is read whole, not piped into grep -q: under pipefail, grep -q
  # ending at its first match kills apt-cache with SIGPIPE, and the package
  # counted as missing.
  candidate() { [[ $(apt-cache policy "$1") =~ Candidate:\ [0-9] ]]; }
  for p in "${missing[@]}"; do
    # Once more if the lists are missing it: another apt-get update running
    # at the same time leaves them incomplete for a moment.
    candidate "$p" || apt-get update -qq
    if ! candidate "$p"; then
      echo "bench: Debian has no package $p" >&2
      exit 1
    fi
  done
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Lock directories (and the Go benchmarks' temp dirs) on tmpfs where there is
# one: on an ext4 without a journal, as on our CI machines, a tight
# create/unlink loop slows down tenfold within seconds (docs/benchmarks.md,
# Library section), and the order of the tools would decide their numbers.
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
  export TMPDIR=/dev/shm
fi

$GO build -o "$work/lockbench" ./bench/cmd/lockbench

echo "bench: go test -bench (count $BENCHCOUNT, benchtime $BENCHTIME)"
# Bounded: a benchmark process stuck at exit on its own FUSE mount (a thread
# flushing a file of the mount it served) is never reaped, and go test
# would wait for it forever.
if ! timeout -k 10s "${GOBENCHTIMEOUT:-20m}" $GO test -run '^$' -bench . -benchtime "$BENCHTIME" -count "$BENCHCOUNT" ./nfslock/ ./fusefs/ | tee "$work/gobench.txt"; then
  echo "bench: some Go benchmarks failed; going on with the rest" >&2
fi
"$work/lockbench" run -bin "$BIN" -peers bench/peers "$@" >"$work/lockbench.txt"
# The Go benchmarks' results and failures, without the logs of failed ones.
{ cat "$work/lockbench.txt"; grep -E '^(Benchmark|goos:|goarch:|pkg:|cpu:|--- FAIL)' "$work/gobench.txt"; } >"$RESULTS"
"$work/lockbench" report -doc "$DOC" -chart "$work/chart.dat" "$RESULTS"
gnuplot -e "datafile='$work/chart.dat'; outfile='$PNG'; stamp='$(date -u '+%Y-%m-%d %H:%M UTC')'" bench/chart.gp
echo "bench: $RESULTS, the tables of $DOC and $PNG rewritten"
