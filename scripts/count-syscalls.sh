#!/bin/sh
# count-syscalls.sh lists and counts the system calls that one uncontended
# nfslock TryLock+Unlock makes on the lock's directory (docs/benchmarks.md).
#
# It runs the nfslock test binary's "one-cycle" child role (bench_test.go)
# under strace. That role first takes and releases a lock in another
# directory, so that what a process does once (hostname, boot time, its own
# start time) is not counted, and then the measured lock. Only calls naming
# the measured lock's directory, by path or by descriptor (strace -y), are
# listed: the Go runtime's own calls are left out.
#
# Usage: scripts/count-syscalls.sh     (needs go and strace; uses $TMPDIR, as the benchmarks do)
set -eu
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "count-syscalls.sh: needs strace" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/count-syscalls.XXXXXX")
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/nfslock.test" ./nfslock/
mkdir "$work/warm" "$work/locks"
NFSLOCK_TEST_CHILD_ROLE=one-cycle strace -f -y -qq -e trace=%file,%desc -o "$work/trace" \
	"$work/nfslock.test" -test.run='^TestChildProcess$' -- "$work/warm/lock" "$work/locks/lock"

# One line per call: no pid, the directory as $DIR, attempt names' random
# hex as <hex>, data and addresses elided.
grep -F "$work/locks/" "$work/trace" | grep -v ' execve(' | sed \
	-e 's/^[0-9]* *//' \
	-e "s|$work/locks/|\$DIR/|g" \
	-e 's/[0-9a-f]\{32\}/<hex>/g' \
	-e 's/AT_FDCWD<[^>]*>/AT_FDCWD/g' \
	-e 's/, "((.*\.\.\., /, "RECORD"..., /' \
	-e 's/, {st_mode=[^}]*}/, {...}/' \
	-e 's/, {events=[^}]*}}/, {...}/' \
	-e 's/, 0x[0-9a-f]*, AT_SYMLINK_NOFOLLOW/, ..., AT_SYMLINK_NOFOLLOW/' >"$work/calls"

# fcntl and epoll_ctl are the Go runtime's bookkeeping on a new descriptor
# (trying to add a regular file to its poller): they stay in the kernel and
# never reach a file server.
local_only='^(fcntl|epoll_ctl)\('
echo "Filesystem calls of one TryLock+Unlock:"
grep -Ev "$local_only" "$work/calls" | nl -w3 -s'  '
echo
echo "Local descriptor bookkeeping on the same descriptors (no filesystem access):"
grep -E "$local_only" "$work/calls" | nl -w3 -s'  ' || true
echo
echo "Other traced calls after the warm-up (not on the lock's directory: procfs reads by the"
echo "liveness check, and whatever the Go runtime did meanwhile):"
warm_end=$(grep -nF "$work/warm/" "$work/trace" | tail -n 1 | cut -d: -f1)
tail -n "+$((warm_end + 1))" "$work/trace" | grep -vF "$work/locks/" | grep -Ev ' (epoll_pwait|exit_group|\+\+\+|---|<\.\.\. )' |
	sed -e 's/^[0-9]* *//' -e 's/AT_FDCWD<[^>]*>/AT_FDCWD/g' -e 's/, {st_mode=[^}]*}/, {...}/' -e 's/, {events=[^}]*}}/, {...}/' |
	cut -c1-110 | nl -w3 -s'  ' || true
echo
printf 'count: %d filesystem calls, %d local (%d in all)\n' \
	"$(grep -Evc "$local_only" "$work/calls")" "$(grep -Ec "$local_only" "$work/calls")" "$(wc -l <"$work/calls")"
