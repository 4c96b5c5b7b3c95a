package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// The workers of the cluster tests. Each takes one lock CYCLES times (0: until
// CHECK/stop exists) and runs the checker's critical section (see
// cluster_checker_test.go) while it holds it. They read their setup from the
// environment:
//
//	HOST      the simulated host's name, for worker IDs
//	ROLE      the worker's role (below)
//	SHARED    1 for a role that takes the lock shared, else 0
//	CHECK     the check directory
//	LOCKPATH  the lock: a path in the host's nfslockfs mount for the mount
//	          roles, a path in the shared export for the others
//	CYCLES    how many times to take the lock
//	HOLD      seconds to stay in the critical section (a decimal fraction),
//	          so that kills land inside it too
//	NFSLOCK   the nfslock binary (roles cli, cli-s)
//	SECTION   the script a lock command runs (bashCommandSection)
//
// Roles, one per way a program takes the lock; those ending in -s take it
// shared (a reader), the others exclusively (a writer):
//
//	mount-bash     bash's `exec 9>"$LOCKPATH"` ... `exec 9>&-` through the mount
//	mount-go       open(2) for writing and close(2) through the mount (Go)
//	mount-flock    util-linux `flock LOCKPATH bash -c SECTION` through the
//	               mount (it opens the file O_RDONLY|O_CREAT and takes
//	               flock(2) LOCK_EX); the section's shell inherits the lock
//	mount-flock-s  the same with `flock -s` (LOCK_SH)
//	lib            the nfslock library on the export: Acquire or, at random,
//	               TryLock with a check that a record naming a dead process of
//	               this host survives no attempt that saw it dead
//	lib-wait       the library's Acquire only: a writer polling with TryLock
//	               keeps no place in the queue, so readers that never stop
//	               may overtake it forever (as they may a loop of flock -n)
//	lib-s          the library's AcquireShared or, at random, TryLockShared
//	cli            `nfslock LOCKPATH bash -c SECTION` on the export; the
//	               section's shell is the worker that the lock's record names
//	cli-s          the same with `nfslock -s`
//
// The Go roles are this test binary started again with workerVar set to
// the role (see init); the others are bash scripts.
const workerVar = "NFSLOCKFS_CLUSTER_WORKER"

func init() {
	if role := os.Getenv(workerVar); role != "" {
		// syscall.Exit: a race-enabled binary pauses a second in os.Exit.
		syscall.Exit(runWorker(role))
	}
}

// exclusiveRoles are the roles of the exclusive scenarios, in the order a
// host's worker slots take them.
var exclusiveRoles = []string{"mount-bash", "mount-go", "mount-flock", "lib", "cli"}

// workerRoles are the roles of runExclusion and runChaos, which the
// real-NFS scenarios run (realnfs_test.go): exclusiveRoles but flock(1).
// With it, the emulated guest took 3m48s for TestRealNFS/v3/exclusion's
// 150 sections (against a 4-minute bound; the guest's whole run is bounded
// by 12 minutes, which one run with it exceeded) and its chaos got 10 and
// 14 sections in 40 s, no kill inside one followed by another holder, in
// two runs (2026-12-07, a load of 5 to 20, beside other guests). Adding it
// there waits for a run on a quiet machine, with fewer cycles per worker.
var workerRoles = slices.DeleteFunc(slices.Clone(exclusiveRoles), func(role string) bool { return role == "mount-flock" })

// readerWriterRoles are the roles of the readers-and-writers scenarios:
// three ways to write and three to read.
var readerWriterRoles = []string{"mount-flock", "mount-bash", "lib-wait", "mount-flock-s", "lib-s", "cli-s"}

// isShared reports whether role takes the lock shared.
func isShared(role string) bool { return strings.HasSuffix(role, "-s") }

// isGoRole reports whether role is a Go worker (see init).
func isGoRole(role string) bool { return role == "mount-go" || strings.HasPrefix(role, "lib") }

// bashWorkerLib is the checker's side of a bash worker: register makes the
// shell a worker of $ROLE (a victim file for the chaos driver and a flocked
// token), section is the critical section (a reader's if $SHARED is 1),
// unregister ends it.
const bashWorkerLib = `set -u
event() { echo "$*" >>"$CHECK/log"; }
register() {
	local st
	read -r st </proc/$$/stat
	set -- $st
	victim=$CHECK/victims/$HOST:$$:$ROLE
	echo "${22}" >"$victim"
	id=$HOST:$$:$ROLE:${EPOCHREALTIME/./}
	exec 8>"$CHECK/tokens/$id"
	flock 8
}
unregister() { rm -f "$victim" "$CHECK/tokens/$id"; }
section() {
	local f n dead=() enter=enter leave=exit mode=x
	if [ "$SHARED" = 1 ]; then enter=share leave=unshare mode=s; fi
	for f in "$CHECK"/inside/*; do
		[ -e "$f" ] || continue
		n=${f##*/}
		[ "$mode" = s ] && [ "${n%%.*}" = s ] && continue
		n=${n#*.}
		if ! { [ -e "$CHECK/tokens/$n" ] && flock -w 10 "$CHECK/tokens/$n" true; }; then
			event alive "$id" "$n"
		fi
		dead+=("$n")
	done
	: >"$CHECK/inside/$mode.$id"
	event "$enter" "$id" "${dead[@]}"
	for n in "${dead[@]}"; do rm -f "$CHECK/inside/x.$n" "$CHECK/inside/s.$n"; done
	sleep "$HOLD"
	event "$leave" "$id"
	rm -f "$CHECK/inside/$mode.$id"
}
more() { [ ! -e "$CHECK/stop" ] && { [ "$CYCLES" = 0 ] || [ "$done" -lt "$CYCLES" ]; }; }
done=0
`

// bashMountWorker is the mount-bash role.
const bashMountWorker = bashWorkerLib + `register
while more; do
	if ! exec 9>"$LOCKPATH"; then
		event error "$id" open-failed
		sleep 0.01
		continue
	fi
	section
	exec 9>&-
	done=$((done+1))
done
unregister
`

// bashCommandSection is the COMMAND that the roles running a lock command
// (cli, cli-s, mount-flock, mount-flock-s) run under it.
const bashCommandSection = bashWorkerLib + `register
section
unregister
`

// bashCommandWorker is the roles that run a lock command, nfslock or
// flock(1), with the section as its COMMAND. The lock command is a victim
// too: killing nfslock while COMMAND runs leaves a lock that names COMMAND,
// which the next acquirer of this host removes once COMMAND has ended;
// killing flock(1) leaves the lock to COMMAND, which inherited its open
// file.
const bashCommandWorker = bashWorkerLib + `case $ROLE in
cli) locker=("$NFSLOCK" -m "cluster cli worker" -w 600) ;;
cli-s) locker=("$NFSLOCK" -s -m "cluster cli worker" -w 600) ;;
mount-flock) locker=(flock) ;;
mount-flock-s) locker=(flock -s) ;;
esac
while more; do
	"${locker[@]}" "$LOCKPATH" bash -c 'eval "$SECTION"' & # short: daemons log the command line
	pid=$!
	victim=$CHECK/victims/$HOST:$pid:${locker[0]##*/}
	if read -r st 2>/dev/null </proc/$pid/stat; then set -- $st; echo "${22}" >"$victim"; fi
	wait "$pid"
	rc=$?
	rm -f "$victim"
	if [ "$rc" = 0 ]; then
		done=$((done+1))
	else
		event error "$HOST:$pid:${locker[0]##*/}:0" "exit-status-$rc"
		sleep 0.01
	fi
done
`

// workerCommand returns the program and arguments that run role.
func workerCommand(role string) []string {
	switch role {
	case "mount-bash":
		return []string{"bash", "-c", bashMountWorker}
	case "cli", "cli-s", "mount-flock", "mount-flock-s":
		return []string{"bash", "-c", bashCommandWorker}
	}
	exe, err := os.Executable()
	if err != nil {
		panic(err) // the test binary is running: it has a path
	}
	return []string{exe}
}

// A goWorker is a running Go worker (roles mount-go and lib*).
type goWorker struct {
	role, id, host, lockPath, check string
	cycles                          int
	hold                            time.Duration
	log                             *os.File
	token                           *os.File // flocked until this process is gone
	victim                          string
}

func runWorker(role string) int {
	w, err := newGoWorker(role)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster worker %s: %v\n", role, err)
		return 1
	}
	for done := 0; w.more(done); {
		release, err := w.acquire()
		if err != nil {
			w.event("error", w.id, oneLine(err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		w.section()
		if err := release(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster worker %s: %v\n", w.id, err)
			return 1
		}
		done++
	}
	os.Remove(w.victim)
	os.Remove(w.token.Name())
	return 0
}

func newGoWorker(role string) (*goWorker, error) {
	w := &goWorker{role: role, host: os.Getenv("HOST"), lockPath: os.Getenv("LOCKPATH"), check: os.Getenv("CHECK")}
	var err error
	if w.cycles, err = strconv.Atoi(os.Getenv("CYCLES")); err != nil {
		return nil, fmt.Errorf("CYCLES: %w", err)
	}
	hold, err := strconv.ParseFloat(os.Getenv("HOLD"), 64)
	if err != nil {
		return nil, fmt.Errorf("HOLD: %w", err)
	}
	w.hold = time.Duration(hold * float64(time.Second))
	pid := os.Getpid()
	w.id = fmt.Sprintf("%s:%d:%s:%d", w.host, pid, role, time.Now().UnixMicro())
	if w.log, err = os.OpenFile(filepath.Join(w.check, checkLog), os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return nil, err
	}
	start, err := processStartTicks(pid)
	if err != nil {
		return nil, err
	}
	w.victim = filepath.Join(w.check, checkVictims, fmt.Sprintf("%s:%d:%s", w.host, pid, role))
	if err := os.WriteFile(w.victim, []byte(start+"\n"), 0o666); err != nil {
		return nil, err
	}
	if w.token, err = os.OpenFile(filepath.Join(w.check, checkTokens, w.id), os.O_CREATE|os.O_WRONLY, 0o666); err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(w.token.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return w, nil
}

// processStartTicks returns field 22 of /proc/PID/stat: the start time
// that, with the pid, names a process for good.
func processStartTicks(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	rest := data[bytes.LastIndexByte(data, ')')+1:] // the command name may hold anything
	f := strings.Fields(string(rest))
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: %q", pid, data)
	}
	return f[19], nil // field 22 of the whole line
}

func (w *goWorker) more(done int) bool {
	if _, err := os.Stat(filepath.Join(w.check, checkStop)); err == nil {
		return false
	}
	return w.cycles == 0 || done < w.cycles
}

func (w *goWorker) event(words ...string) {
	fmt.Fprintln(w.log, strings.Join(words, " ")) // one write: O_APPEND keeps lines whole
}

// acquire takes the lock the role's way and returns its release.
func (w *goWorker) acquire() (func() error, error) {
	if w.role == "mount-go" {
		f, err := os.OpenFile(w.lockPath, os.O_WRONLY|os.O_CREATE, 0o666)
		if err != nil {
			return nil, err
		}
		return f.Close, nil
	}
	opts := []nfslock.Option{nfslock.WithMessage("cluster worker " + w.id)}
	acquire := func() (unlocker, error) { return nfslock.Acquire(context.Background(), w.lockPath, opts...) }
	try := func() (unlocker, error) { return nfslock.TryLock(w.lockPath, opts...) }
	if isShared(w.role) {
		acquire = func() (unlocker, error) { return nfslock.AcquireShared(context.Background(), w.lockPath, opts...) }
		try = func() (unlocker, error) { return nfslock.TryLockShared(w.lockPath, opts...) }
	}
	var l unlocker
	var err error
	if w.role == "lib-wait" || rand.N(2) == 0 {
		l, err = acquire()
	} else {
		l, err = w.tryUntilTaken(try)
	}
	if err != nil {
		return nil, err
	}
	return func() error { return w.unlock(l) }, nil
}

// An unlocker is a lock the library gave: a *nfslock.Lock or a
// *nfslock.SharedLock.
type unlocker interface{ Unlock() error }

// tryUntilTaken polls with try (TryLock or TryLockShared). SPEC §5: a
// record naming a dead process of this host lasts for one acquire attempt
// at most. So before each attempt the worker reads the lock: if its record
// names a dead process of this host ("dead" is logged), the attempt must
// remove it, and failing on that same record is logged as "stale".
func (w *goWorker) tryUntilTaken(try func() (unlocker, error)) (unlocker, error) {
	delay := time.Millisecond
	for {
		before, err := nfslock.Inspect(w.lockPath)
		dead := err == nil && before.State == nfslock.HolderDead
		if dead {
			w.event("dead", w.id, oneLine(string(before.Raw)))
		}
		l, err := try()
		var held *nfslock.HeldError
		if !errors.As(err, &held) {
			return l, err
		}
		if dead && bytes.Equal(held.Holder.Raw, before.Raw) {
			w.event("stale", w.id, oneLine(string(held.Holder.Raw)))
		}
		time.Sleep(delay/2 + rand.N(delay))
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// unlock releases l, retrying after filesystem errors (injected faults):
// the lock must not outlive the section. A lock that someone removed or
// took over while this worker held it is logged as "lost", a violation:
// no one but an operator may do that to a live holder.
func (w *goWorker) unlock(l unlocker) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := l.Unlock()
		if errors.Is(err, nfslock.ErrNotLocked) || errors.Is(err, nfslock.ErrLocked) {
			w.event("lost", w.id, oneLine(err))
			return nil
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		w.event("error", w.id, "unlock:", oneLine(err))
		time.Sleep(10 * time.Millisecond)
	}
}

// section is the checker's critical section (see cluster_checker_test.go).
func (w *goWorker) section() {
	shared := isShared(w.role)
	now, err := insideNow(w.check)
	if err != nil {
		w.event("error", w.id, oneLine(err))
	}
	var dead []string
	for _, other := range slices.Sorted(maps.Keys(now)) {
		if shared && now[other] {
			continue // readers together: a writer vouches for those killed inside
		}
		if !tokenFreed(filepath.Join(w.check, checkTokens, other)) {
			w.event("alive", w.id, other)
		}
		dead = append(dead, other)
	}
	enter, leave := "enter", "exit"
	if shared {
		enter, leave = "share", "unshare"
	}
	mine := insideFile(w.check, w.id, shared)
	if err := os.WriteFile(mine, nil, 0o666); err != nil {
		w.event("error", w.id, oneLine(err))
	}
	w.event(append([]string{enter, w.id}, dead...)...)
	for _, other := range dead {
		os.Remove(insideFile(w.check, other, false))
		os.Remove(insideFile(w.check, other, true))
	}
	time.Sleep(w.hold)
	w.event(leave, w.id)
	os.Remove(mine)
}

// tokenFreed reports whether the worker whose token is at name is dead:
// the token exists (its worker did not end normally) and its flock is free,
// or becomes free within 10 s (a dying worker's files are being closed).
func tokenFreed(name string) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			return true
		}
	}
	return false
}

// oneLine makes an error or text fit on one log line.
func oneLine(v any) string {
	return strings.Join(strings.Fields(fmt.Sprint(v)), "_")
}
