//go:build linux

package fusefs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

func TestShellRedirectionLocksUntilClosed(t *testing.T) {
	m := mount(t, FormatText)
	// The shell opens the lock, shows it from inside, closes it, and
	// reports what the backing store said at each step.
	script := `
exec 9>"$MNT/job"
cat "$MNT/job"
test -e "$BACKING/job.nfs_lock" && echo held
exec 9>&-
sleep 0.05
test -e "$BACKING/job.nfs_lock" || echo free
`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "MNT="+m.dir, "BACKING="+m.backing)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"host: ", "pid: " + strconv.Itoa(cmd.Process.Pid) + "\n", "message: bash -c", "held\n", "free\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

// Each way a program opens a file for writing takes the lock, and closing
// releases it.
func TestOpenFlagsThatLock(t *testing.T) {
	m := mount(t, FormatText)
	for _, tc := range []struct {
		name  string
		flags int
	}{
		{"O_WRONLY|O_CREAT", os.O_WRONLY | os.O_CREATE},
		{"O_RDWR|O_CREAT", os.O_RDWR | os.O_CREATE},
		{"O_WRONLY|O_CREAT|O_TRUNC", os.O_WRONLY | os.O_CREATE | os.O_TRUNC},
		{"O_CREAT|O_EXCL", os.O_WRONLY | os.O_CREATE | os.O_EXCL},
		{"O_APPEND|O_CREAT", os.O_WRONLY | os.O_APPEND | os.O_CREATE},
		{"O_NONBLOCK|O_CREAT", os.O_WRONLY | os.O_CREATE | syscall.O_NONBLOCK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.OpenFile(m.path("flags"), tc.flags, 0o666)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := nfslock.TryLock(m.lockPath("flags")); !errors.Is(err, nfslock.ErrLocked) {
				t.Errorf("TryLock on the backing path while open: %v, want ErrLocked", err)
			}
			rec, err := nfslock.ReadRecord(m.lockPath("flags"))
			if err != nil || rec.Pid != os.Getpid() {
				t.Errorf("record %+v, %v: want this process (%d)", rec, err, os.Getpid())
			}
			f.Close()
			waitFor(t, "the lock is released", func() bool { return !m.isHeld("flags") })
		})
	}
	// Without O_CREAT, a lock that is free and has no file is not there,
	// as for any file.
	if f, err := os.OpenFile(m.path("flags"), os.O_WRONLY, 0); !errors.Is(err, os.ErrNotExist) {
		f.Close()
		t.Errorf("O_WRONLY of a free lock without a file: %v, want ENOENT", err)
	}
	// With a file left over, it locks.
	os.WriteFile(m.lockPath("flags"), nil, 0o644)
	f, err := os.OpenFile(m.path("flags"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !m.isHeld("flags") {
		t.Error("O_WRONLY of an existing lock file did not lock")
	}
	f.Close()
}

func TestHeldLockRefusesNonBlockingOpens(t *testing.T) {
	m := mount(t, FormatText)
	m.holdElsewhere(t, "busy")
	start := time.Now()
	if err := m.tryOpen("busy", syscall.O_NONBLOCK); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("O_NONBLOCK open of a held lock: %v, want EAGAIN", err)
	}
	if err := m.tryOpen("busy", os.O_EXCL); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("O_CREAT|O_EXCL open of a held lock: %v, want EEXIST", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing took %v", d)
	}
}

// A blocking open waits for the holder's close, then takes the lock.
func TestBlockedOpenGetsLockAtClose(t *testing.T) {
	m := mount(t, FormatText)
	holder := m.holdElsewhere(t, "handoff")
	m.blockedOpen(t, "handoff").mustWaitFor(t, 50*time.Millisecond, "the holder closed", holder.Close)
}

// Copies of a descriptor (dup, fork) share its lock: closing one of them
// does not release it; closing the last does.
func TestLockBelongsToTheOpenFile(t *testing.T) {
	m := mount(t, FormatText)
	f := m.mustHold(t, "shared")
	dup, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	time.Sleep(50 * time.Millisecond)
	if !m.isHeld("shared") {
		t.Fatal("closing one of two descriptors released the lock")
	}
	syscall.Close(dup)
	waitFor(t, "the lock is released", func() bool { return !m.isHeld("shared") })
}

// The mount's release timing: close, then at once a non-blocking open from
// the same process, must not see the lock still held.
func TestCloseThenNonBlockingReopen(t *testing.T) {
	m := mount(t, FormatText)
	const tries = 1000
	eagain := 0
	for range tries {
		f, err := m.openWrite("again", syscall.O_NONBLOCK)
		if errors.Is(err, syscall.EAGAIN) {
			eagain++
			time.Sleep(5 * time.Millisecond) // let the release finish
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	t.Logf("%d of %d immediate non-blocking reopens saw EAGAIN", eagain, tries)
	if eagain > 0 {
		t.Errorf("%d of %d immediate non-blocking reopens failed with EAGAIN", eagain, tries)
	}
}

func TestInteropWithLibrary(t *testing.T) {
	m := mount(t, FormatText)
	// The mount holds it: the library sees it held, by this process.
	f := m.mustHold(t, "both")
	_, err := nfslock.TryLock(m.lockPath("both"))
	var held *nfslock.HeldError
	if !errors.As(err, &held) || held.Holder.Record.Pid != os.Getpid() {
		t.Fatalf("library TryLock while the mount holds it: %v", err)
	}
	f.Close()
	waitFor(t, "the lock is released", func() bool { return !m.isHeld("both") })

	// The library holds it: the mount refuses, then takes it once free.
	lock, err := nfslock.TryLock(m.lockPath("both"), nfslock.WithMessage("library"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.tryOpen("both", syscall.O_NONBLOCK); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("mount open while the library holds it: %v, want EAGAIN", err)
	}
	if data, _ := os.ReadFile(m.path("both")); !strings.Contains(string(data), "message: library\n") {
		t.Errorf("cat shows %q, want the library's message", data)
	}
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	f = m.mustHold(t, "both")
	f.Close()
}

// An operator breaks a lock that an open file holds and someone else takes
// it: the old file's writes fail with ENOLCK, and its close leaves the new
// holder's lock alone.
func TestBrokenLock(t *testing.T) {
	m := mount(t, FormatText)
	f := m.mustHold(t, "broken")
	if _, err := nfslock.Break(m.lockPath("broken")); err != nil {
		t.Fatal(err)
	}
	other, err := nfslock.TryLock(m.lockPath("broken"), nfslock.WithMessage("new holder"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Unlock()
	if _, err := f.Write([]byte("still mine?")); !errors.Is(err, syscall.ENOLCK) {
		t.Errorf("write to a broken lock: %v, want ENOLCK", err)
	}
	f.Close()
	time.Sleep(50 * time.Millisecond)
	if rec, err := nfslock.ReadRecord(m.lockPath("broken")); err != nil || rec.Message != "new holder" {
		t.Errorf("after the old file's close the lock is %+v, %v; want the new holder's", rec, err)
	}
}

// The lock belongs to the open file: when the process that opened it exits
// while a child still has it open, the record names a dead process, yet
// the lock is not stale and a non-blocking open through the mount must not
// take it.
func TestLockOutlivesOpenerWhileChildHoldsIt(t *testing.T) {
	m := mount(t, FormatText)
	cmd := exec.Command("bash", "-c", `exec 9>"$MNT/inherited"; sleep 60 >/dev/null 2>&1 & echo $!`)
	cmd.Env = append(os.Environ(), "MNT="+m.dir)
	out, err := cmd.Output() // the shell exits; its child keeps fd 9
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	defer syscall.Kill(child, syscall.SIGKILL)
	if err := m.tryOpen("inherited", syscall.O_NONBLOCK); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("non-blocking open while the opener's child holds the file: %v, want EAGAIN", err)
	}
	syscall.Kill(child, syscall.SIGKILL)
	waitFor(t, "the lock is released", func() bool { return !m.isHeld("inherited") })
}

// Many locks held by one process's open files, kept by its child after it
// exits: one watch renames every record to the child, and once the child
// exits, every lock is released and no watch is left (keepers).
func TestLocksOfOneOpenerOutliveItInItsChild(t *testing.T) {
	const files = 20
	m := mount(t, FormatText)
	cmd := exec.Command("bash", "-c", `for fd in $(seq 10 $((10+FILES-1))); do eval "exec $fd>\"\$MNT/f$fd\""; done; sleep 60 >/dev/null 2>&1 & echo $!`)
	cmd.Env = append(os.Environ(), "MNT="+m.dir, fmt.Sprintf("FILES=%d", files))
	out, err := cmd.Output() // the shell exits; its child keeps the files
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	defer syscall.Kill(child, syscall.SIGKILL)
	for fd := 10; fd < 10+files; fd++ {
		name := fmt.Sprintf("f%d", fd)
		waitFor(t, name+" names the child", func() bool {
			rec, err := nfslock.ReadRecord(m.lockPath(name))
			return err == nil && rec.Pid == child
		})
	}
	syscall.Kill(child, syscall.SIGKILL)
	for fd := 10; fd < 10+files; fd++ {
		name := fmt.Sprintf("f%d", fd)
		waitFor(t, name+" is released", func() bool { return !m.isHeld(name) })
	}
	k := &m.srv.fsys.keepers
	waitFor(t, "no watch is left", func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.watches) == 0 && len(k.byLock) == 0
	})
}
