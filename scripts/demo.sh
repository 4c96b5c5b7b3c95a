#!/usr/bin/env bash
# make demo: mount nfslockfs over a temporary backing directory and show two
# processes contending for one lock by opening the same file.
set -euo pipefail
bin=${1:-bin}
work=$(mktemp -d /tmp/nfslockfs-demo.XXXXXX)
backing=$work/backing mnt=$work/mnt
mkdir -p "$backing" "$mnt"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
daemon=
cleanup() {
  [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  # The daemon leaves its mountpoint immutable, so that nothing can be
  # created there while no daemon serves it.
  chattr -i "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "nfslockfs $backing $mnt"
"$bin/nfslockfs" --log-level=info "$backing" "$mnt" 2>"$work/daemon.log" &
daemon=$!
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.05; done
mountpoint -q "$mnt" || { cat "$work/daemon.log"; echo "demo: the mount did not appear" >&2; exit 1; }

# Two tiny programs that know nothing of locking but "open for writing".
cat >"$work/render-A" <<'SH'
#!/usr/bin/env bash
exec 9>"$1/nightly"                  # blocks until the lock is ours
echo "A: got the lock; working for 3 seconds"
sleep 3
echo "A: exiting (the kernel closes its files: the lock is released)"
SH
cat >"$work/render-B" <<'SH'
#!/usr/bin/env bash
start=$(date +%s%N)
exec 9>"$1/nightly"
echo "B: got the lock after $(( ($(date +%s%N) - start) / 1000000 )) ms of waiting"
sed 's/^/B reads: /' "$1/nightly"
SH
chmod +x "$work/render-A" "$work/render-B"

say "process A opens $mnt/nightly for writing"
"$work/render-A" "$mnt" &
a=$!
sleep 0.5

say "process B opens the same file: it blocks until A is gone"
"$work/render-B" "$mnt" &
b=$!
sleep 0.5

say "cat $mnt/nightly (reading never blocks): who holds it now"
cat "$mnt/nightly"

say "ls $mnt, and the files on the shared directory underneath"
ls -l "$mnt"
ls -l "$backing"

wait "$a" "$b"
say "both done: the lock is free again"
ls -l "$mnt"

say "the daemon's log (one line per acquire and release)"
kill -TERM "$daemon"; wait "$daemon" || true; daemon=
cat "$work/daemon.log"
mountpoint -q "$mnt" && { echo "demo: still mounted" >&2; exit 1; }
say "unmounted cleanly"
