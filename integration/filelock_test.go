package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// Locks taken with flock(1), flock(2), fcntl(2) and lockf(3) on files of
// the mount are cluster locks: two daemons over one backing directory are
// two nodes, and a lock taken through one excludes one through the other.

// twoNodes starts two daemons over one backing directory.
func twoNodes(t *testing.T, options ...string) (a, b *daemon) {
	t.Helper()
	a = startDaemon(t, options...)
	b = startDaemonOn(t, a.backing, testutil.MountpointDir(t), options...)
	return a, b
}

// onNodes runs a bash script with $A and $B the two mounts, $BACKING the
// backing directory, $T a scratch directory, $LK the test program
// testdata/lk.c and $NFSLOCK the CLI; it fails t unless the script
// succeeds within 10s and prints want. $T/go is a FIFO that the script holds open for reading and
// writing, so that opening it never blocks: `echo go >$T/go` lets one line
// reader (`read _ <$T/go`) go on.
func onNodes(t *testing.T, a, b *daemon, script, want string) {
	t.Helper()
	scratch := t.TempDir()
	if err := exec.Command("mkfifo", filepath.Join(scratch, "go")).Run(); err != nil {
		t.Fatal(err)
	}
	got, err := runScript(t, "set -u\nexec 3<>$T/go\n"+script,
		"A="+a.mnt, "B="+b.mnt, "BACKING="+a.backing, "T="+scratch, "LK="+lkProgram(t), "NFSLOCK="+bin("nfslock"))
	if err != nil || got != want {
		t.Fatalf("script: %v\ngot:\n%s\nwant:\n%s", err, got, want)
	}
}

// lkProgram builds testdata/lk.c once per test binary run.
func lkProgram(t *testing.T) string {
	t.Helper()
	lk := filepath.Join(binDir, "lk")
	if _, err := os.Stat(lk); err == nil {
		return lk
	}
	if out, err := exec.Command("gcc", "-Wall", "-o", lk, "testdata/lk.c").CombinedOutput(); err != nil {
		t.Fatalf("building testdata/lk.c: %v\n%s", err, out)
	}
	return lk
}

// takeAfter is a bash function: `takeAfter MNT NAME` takes the lock with
// flock(1) through MNT, retrying for a second: a release made through the
// other node reaches the backing store shortly after close(2) returns.
const takeAfter = `takeAfter() { for i in $(seq 100); do flock -n "$1/$2" true && return 0; sleep 0.01; done; return 1; }
`

func TestFlockExcludesAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	t.Run("flock FILE cmd, -n, -w, blocking", func(t *testing.T) {
		onNodes(t, a, b, takeAfter+`
flock $A/x sh -c 'echo held >$T/log; read _ <$T/go; echo releasing >>$T/log' &
until [ -s $T/log ]; do sleep 0.01; done
flock -n $B/x true; echo "-n: $?"
flock -w 0.2 $B/x true; echo "-w: $?"
flock -E 7 -n $B/x true; echo "-E: $?"
flock $B/x sh -c 'echo "waiter saw: $(tail -1 $T/log)"' &
sleep 0.2
echo go >$T/go
wait
`, "-n: 1\n-w: 1\n-E: 7\nwaiter saw: releasing\n")
	})
	t.Run("read-only descriptor", func(t *testing.T) {
		onNodes(t, a, b, takeAfter+`
: >$BACKING/ro
exec 9<$A/ro
flock 9
flock -n $B/ro true; echo "other node: $?"
grep -q "^pid: $$\$" $B/ro && echo "record names the shell"
exec 9<&-
takeAfter $B ro && echo "free after close"
`, "other node: 1\nrecord names the shell\nfree after close\n")
	})
	t.Run("SIGINT ends a blocked flock and nothing stays held", func(t *testing.T) {
		// waiting W: until process W waits in flock(1) (bash made it
		// ignore SIGINT, as all its background commands; env undoes that).
		onNodes(t, a, b, takeAfter+`waiting() { until [ "$(cat /proc/$1/comm)" = flock ] && grep -q "^State:.S" /proc/$1/status; do sleep 0.01; done; sleep 0.1; }
flock $A/int sh -c 'echo held >$T/log; read _ <$T/go' &
until [ -s $T/log ]; do sleep 0.01; done
env --default-signal=INT flock $B/int echo must-not-run &
W=$!
waiting $W
kill -INT $W
wait $W; echo "waiter: $?"
exec 4>&2 2>/dev/null # not bash's notice that a job was killed
flock $B/int echo must-not-run-either &
W=$!
waiting $W
kill -KILL $W
wait $W; echo "killed waiter: $?"
exec 2>&4
echo go >$T/go
wait
takeAfter $B int && echo "free"
`, "waiter: 130\nkilled waiter: 137\nfree\n")
		waitFor(t, "nothing is held", func() bool { return !a.isHeld("int") })
	})
	t.Run("a forked child keeps the lock", func(t *testing.T) {
		onNodes(t, a, b, takeAfter+forkedChildHolds("LOCK_EX", "fork"), forkedChildHoldsWant)
	})
	t.Run("python fcntl.flock", func(t *testing.T) {
		onNodes(t, a, b, takeAfter+`
: >$BACKING/py
python3 -c '
import fcntl, sys
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
open(sys.argv[2] + "/go").readline()
' $A/py $T >$T/log &
until [ -s $T/log ]; do sleep 0.01; done
cat $T/log
python3 -c '
import fcntl, sys
try:
    fcntl.flock(open(sys.argv[1]), fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("other node got it")
except BlockingIOError:
    print("other node: EWOULDBLOCK")
' $B/py
echo go >$T/go
wait
takeAfter $B py && echo free
`, "locked\nother node: EWOULDBLOCK\nfree\n")
	})
}

// Shared locks (flock -s, LOCK_SH, F_RDLCK) through the mounts: any number
// of holders on both nodes at once, a writer waits for all of them, and
// new shared holders wait behind a waiting writer.
func TestSharedLocksAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	onNodes(t, a, b, takeAfter+`
: >$T/readers
for m in $A $B $A $B; do
	flock -s $m/s sh -c 'echo r >>$T/readers; read _ <$T/go' &
done
until [ "$(wc -l <$T/readers)" = 4 ]; do sleep 0.01; done
echo "4 shared holders on 2 nodes"
grep -q "^shared-by: 4" $B/s && echo "cat shows them"
ls $A | grep -qx s && echo "ls lists it"
$NFSLOCK status $BACKING/s | grep -E "^(state|shared-by):"
$NFSLOCK -s -n $BACKING/s echo "nfslock -s: a fifth shared holder"
$NFSLOCK -n $BACKING/s true; echo "nfslock -n: $?"
rm $A/s 2>&1 | sed 's/.*: //'
flock -n $B/s true; echo "writer -n: $?"
flock $B/s sh -c 'echo "writer in after $(cat $T/gone) left"; echo writer >$T/wrote; read _ <$T/go' &
until [ -e $BACKING/s.nfs_lock ]; do sleep 0.01; done
flock -s -n $A/s true; echo "new reader while the writer waits: $?"
flock -s $A/s sh -c 'echo "queued reader in after $(cat $T/wrote 2>/dev/null)"' &
sleep 0.2
echo 4 >$T/gone
for i in 1 2 3 4; do echo go >$T/go; done
until [ -s $T/wrote ]; do sleep 0.01; done
echo go >$T/go
wait
takeAfter $B s && echo free
`, "4 shared holders on 2 nodes\ncat shows them\nls lists it\nstate: shared\nshared-by: 4\nnfslock -s: a fifth shared holder\nnfslock -n: 1\nDevice or resource busy\nwriter -n: 1\nnew reader while the writer waits: 1\nwriter in after 4 left\nqueued reader in after writer\nfree\n")
	// A forked child keeps a shared flock lock when its parent exits, and
	// the record follows it: no other process of the host may judge the
	// reader stale while the child holds it.
	onNodes(t, a, b, takeAfter+forkedChildHolds("LOCK_SH", "fs"), forkedChildHoldsWant)
	waitFor(t, "no lock or reader file is left", func() bool {
		entries, err := os.ReadDir(a.backing)
		return err == nil && len(entries) == 0
	})
}

// With --no-lock-on-open, opening for writing takes no lock, and fcntl(2)
// and lockf(3) locks on writable descriptors are the cluster lock.
func TestFcntlExcludesAcrossNodes(t *testing.T) {
	a, b := twoNodes(t, "--no-lock-on-open")
	t.Run("F_OFD_SETLKW, F_SETLKW and F_GETLK", func(t *testing.T) {
		onNodes(t, a, b, `
$LK ofd $A/c <$T/go >$T/log &
H=$!
until [ -s $T/log ]; do sleep 0.01; done
echo "holder: $(cat $T/log)"
[ "$($LK getlk $B/c)" = "write $H" ] && echo "F_GETLK names the holder"
(echo waiting >$T/wait; $LK posix $B/c </dev/null >/dev/null; echo "F_SETLKW: $(tail -1 $T/log)") &
until [ -s $T/wait ]; do sleep 0.01; done
sleep 0.2
echo released >>$T/log
echo go >$T/go
wait
`, "holder: locked\nF_GETLK names the holder\nF_SETLKW: released\n")
	})
	t.Run("python fcntl.lockf; closing any descriptor releases a POSIX lock", func(t *testing.T) {
		onNodes(t, a, b, takeAfter+`
python3 -c '
import fcntl, sys
f = open(sys.argv[1], "w")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
open(sys.argv[2] + "/go").readline()
open(sys.argv[1]).close()
print("closed another descriptor", flush=True)
open(sys.argv[2] + "/go").readline()
' $A/posix $T >$T/log &
until [ -s $T/log ]; do sleep 0.01; done
cat $T/log
python3 -c '
import fcntl, sys
try:
    fcntl.lockf(open(sys.argv[1], "w"), fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("other node got it")
except OSError as e:
    print("other node:", e.strerror)
' $B/posix
echo go >$T/go
until [ "$(wc -l <$T/log)" = 2 ]; do sleep 0.01; done
tail -1 $T/log
takeAfter $B posix && echo "free while the first descriptor is open"
echo go >$T/go
wait
`, "locked\nother node: Resource temporarily unavailable\nclosed another descriptor\nfree while the first descriptor is open\n")
	})
	t.Run("pidfile daemon with lockf(F_TLOCK)", func(t *testing.T) {
		onNodes(t, a, b, `
$LK pidfile $A/daemon.pid <$T/go >$T/log &
H=$!
until [ -s $T/log ]; do sleep 0.01; done
cat $T/log
start=$EPOCHREALTIME
$LK pidfile $B/daemon.pid; echo "second instance: $?"
grep -q "^pid: $H\$" $B/daemon.pid && grep -q "^message: $H\$" $B/daemon.pid && echo "cat shows the first"
echo go >$T/go
wait
`, "running\nalready running\nsecond instance: 1\ncat shows the first\n")
	})
}

// A lock request through the mount never succeeds on this node alone: with
// the lock held through the other node, every way of asking fails or waits.
func TestNoNodeLocalGrant(t *testing.T) {
	a, b := twoNodes(t)
	onNodes(t, a, b, `
flock $A/l sh -c 'echo held >$T/log; read _ <$T/go' &
until [ -s $T/log ]; do sleep 0.01; done
for how in "flock -n" "flock -s -n" "flock -x -n"; do
	$how $B/l true; echo "$how: $?"
done
python3 -c '
import fcntl, sys
for name, op in (("LOCK_SH", fcntl.LOCK_SH), ("LOCK_EX", fcntl.LOCK_EX)):
    try:
        fcntl.flock(open(sys.argv[1]), op | fcntl.LOCK_NB)
        print(name, "granted")
    except BlockingIOError:
        print(name, "refused")
    try:
        fcntl.lockf(open(sys.argv[1]), fcntl.LOCK_SH | fcntl.LOCK_NB)
        print("F_RDLCK granted")
    except OSError:
        print("F_RDLCK refused")
' $B/l | sort -u
echo go >$T/go
wait
`, "flock -n: 1\nflock -s -n: 1\nflock -x -n: 1\nF_RDLCK refused\nLOCK_EX refused\nLOCK_SH refused\n")
	if s := a.stderr.String() + b.stderr.String(); strings.Contains(s, "level=error") {
		t.Errorf("daemons logged errors:\n%s", s)
	}
}

// forkedChildHolds is a script for onNodes: on node A a Python process
// takes flock op (LOCK_EX or LOCK_SH) on name and forks a child that keeps
// it; once the parent has exited, an exclusive flock -n of name on node B
// must fail, the record must name the child, and the lock must be free once
// the child is gone (forkedChildHoldsWant).
func forkedChildHolds(op, name string) string {
	return strings.NewReplacer("OP", op, "NAME", name).Replace(`
: >$BACKING/NAME
python3 -c '
import fcntl, os, sys
f = open(sys.argv[1])
fcntl.flock(f, fcntl.OP)
if os.fork() == 0:
    open(sys.argv[2] + "/child", "w").write(str(os.getpid()))
    open(sys.argv[2] + "/go").readline()
    os._exit(0)
' $A/NAME $T
until [ -s $T/child ]; do sleep 0.01; done
sleep 0.3
flock -n $B/NAME true; echo "another holder while the child holds: $?"
grep -q "^pid: $(cat $T/child)\$" $B/NAME && echo "record names the child"
echo go >$T/go
takeAfter $B NAME && echo "free once the child is gone"
`)
}

const forkedChildHoldsWant = "another holder while the child holds: 1\nrecord names the child\nfree once the child is gone\n"
