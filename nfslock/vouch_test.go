//go:build linux

package nfslock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// exitedOwner starts a process, lets take hold a lock in its name, and
// kills and reaps it: the lock's record then names a dead process of this
// host, as when a FUSE opener exits while its forked child keeps the file.
func exitedOwner(t *testing.T, take func(pid int)) {
	t.Helper()
	owner := exec.Command("sleep", "60")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	take(owner.Process.Pid)
	owner.Process.Kill()
	owner.Wait()
}

// otherProcessTries has another process of this host call TryLock on p
// once and returns what it said ("locked", or "held PID HOST"); a lock it
// took it releases as it exits.
func otherProcessTries(t *testing.T, p string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gate, open := startGate(t)
	c := startChild(ctx, t, "trylock-once", []*os.File{gate}, p)
	c.expect(t, "ready")
	open.Close()
	line, err := c.readLine()
	if err != nil {
		t.Fatalf("%v\n%s", err, c.stderr.Bytes())
	}
	waitAll(t, c)
	return line
}

// TestVouchKeepsLockOfExitedOwner: a lock held in the name of a process
// that has exited is stale to the other processes of the host, and taken
// by the first that tries, unless the process holding it vouches for it
// (WithVouch): then it stays held, and its vouch ends with it. Exclusive
// and shared holds alike.
func TestVouchKeepsLockOfExitedOwner(t *testing.T) {
	host, err := hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, shared := range []bool{false, true} {
		for _, vouching := range []bool{false, true} {
			t.Run(fmt.Sprintf("shared=%v/vouch=%v", shared, vouching), func(t *testing.T) {
				p := lockIn(t)
				var unlock func() error
				var vouchOf func() vouchByte
				var owner int
				exitedOwner(t, func(pid int) {
					owner = pid
					opts := []Option{WithOwner(pid)}
					if vouching {
						opts = append(opts, WithVouch())
					}
					if shared {
						s, err := TryLockShared(p, opts...)
						if err != nil {
							t.Fatal(err)
						}
						unlock, vouchOf = s.Unlock, func() vouchByte { return vouchByteOf(s.dev, s.ino, s.data) }
					} else {
						l, err := TryLock(p, opts...)
						if err != nil {
							t.Fatal(err)
						}
						unlock, vouchOf = l.Unlock, func() vouchByte { return vouchByteOf(l.dev, l.ino, l.data) }
					}
				})
				got := otherProcessTries(t, p)
				want := "locked"
				if vouching {
					want = fmt.Sprintf("held %d %s", owner, host)
				}
				if got != want {
					t.Fatalf("another process of this host tried the lock of exited pid %d: %q, want %q", owner, got, want)
				}
				if !vouching {
					return
				}
				b := vouchOf()
				if !vouchHeld(b) {
					t.Fatal("no vouch while held")
				}
				if err := unlock(); err != nil {
					t.Fatal(err)
				}
				if vouchHeld(b) {
					t.Error("the vouch is still held after the release")
				}
			})
		}
	}
}

// TestVouchMovesWithTheRecord: SetOwner replaces the lock file, and the
// vouch follows it to the new file, so that the lock is vouched for at
// every instant.
func TestVouchMovesWithTheRecord(t *testing.T) {
	p := lockIn(t)
	var l *Lock
	exitedOwner(t, func(pid int) {
		var err error
		if l, err = TryLock(p, WithOwner(pid), WithVouch()); err != nil {
			t.Fatal(err)
		}
	})
	defer l.Unlock()
	before := vouchByteOf(l.dev, l.ino, l.data)
	if err := l.SetMessage("renamed record"); err != nil {
		t.Fatal(err)
	}
	if vouchHeld(before) {
		t.Error("the old record's vouch is still held after SetMessage")
	}
	if !vouchHeld(vouchByteOf(l.dev, l.ino, l.data)) {
		t.Error("the new record has no vouch")
	}
	if h, err := Inspect(p); err != nil || h.State != HolderAlive {
		t.Errorf("Inspect of the vouched lock: %v, %v; want alive", h.State, err)
	}
}

// TestVouchEndsWithItsProcess: a vouch lasts as long as the process that
// made it, whatever ends that process: once a kill -9 has ended it, a lock
// whose holder and voucher are both dead is stale.
func TestVouchEndsWithItsProcess(t *testing.T) {
	p := lockIn(t)
	var voucher *child
	exitedOwner(t, func(pid int) {
		voucher = startChild(t.Context(), t, "vouch-for", nil, p, fmt.Sprint(pid))
		voucher.expect(t, "held")
	})
	if h, err := Inspect(p); err != nil || h.State != HolderAlive {
		t.Fatalf("Inspect while the voucher runs: %v, %v; want alive", h.State, err)
	}
	voucher.cmd.Process.Kill()
	voucher.cmd.Wait()
	if h, err := Inspect(p); err != nil || h.State != HolderDead {
		t.Errorf("Inspect once the voucher was killed: %v, %v; want dead", h.State, err)
	}
}

// vouchForChild takes the lock args[0] in the name of pid args[1] with a
// vouch, says "held", and holds it until killed or its stdin ends.
func vouchForChild(args []string) error {
	pid, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	l, err := TryLock(args[0], WithOwner(pid), WithVouch())
	if err != nil {
		return err
	}
	fmt.Println("held")
	io.Copy(io.Discard, os.Stdin)
	return l.Unlock()
}

// TestVouchOfBrokenLockVouchesForNoOther: a Lock whose files were removed
// by someone else (a break, an expired lease) keeps its vouch until its
// holder learns it. When the server gives its inode number to another lock
// file, that old vouch neither vouches for the new lock (a dead holder's
// lock is still cleaned up) nor, when the old Lock ends, removes the new
// lock's own vouch. (Found by review: vouches were named by device and
// inode alone.)
func TestVouchOfBrokenLockVouchesForNoOther(t *testing.T) {
	host, err := hostname()
	if err != nil {
		t.Fatal(err)
	}
	p1 := lockIn(t)
	p2 := filepath.Join(filepath.Dir(p1), "second")
	l1, err := TryLock(p1, WithVouch())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{readersDir(p1), p1, lockFile(p1)} { // broken elsewhere
		os.Remove(name)
	}
	// A dead holder's lock on the same file identity: the old vouch must
	// not keep it.
	var dead int
	exitedOwner(t, func(pid int) { dead = pid })
	stale := Record{Host: host, Pid: dead, Message: "stale"}
	plant(t, p2, stale)
	fi, err := os.Lstat(lockFile(p2))
	if err != nil {
		t.Fatal(err)
	}
	l1.dev, l1.ino = fileIDOf(fi).dev, fileIDOf(fi).ino // as if the server reused the inode
	unvouch(l1.dev, l1.ino, l1.data, l1)                // the vouch made under the old identity is gone with it
	if err := vouch(l1.dev, l1.ino, l1.data, l1); err != nil {
		t.Fatal(err)
	}
	if got := otherProcessTries(t, p2); got != "locked" {
		t.Errorf("a lock of dead pid %d sharing a broken lock's file identity: %q, want it cleaned up and taken", dead, got)
	}
	// A live vouched lock on that identity survives the old Lock's end.
	var l2 *Lock
	var owner int
	exitedOwner(t, func(pid int) {
		owner = pid
		if l2, err = TryLock(p2, WithOwner(pid), WithVouch()); err != nil {
			t.Fatal(err)
		}
	})
	defer l2.Unlock()
	l1.dev, l1.ino = l2.dev, l2.ino
	if err := l1.Unlock(); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("Unlock of the broken lock: %v, want ErrNotLocked", err)
	}
	if got, want := otherProcessTries(t, p2), fmt.Sprintf("held %d %s", owner, host); got != want {
		t.Errorf("a vouched lock after another Lock of the same file identity ended: %q, want %q", got, want)
	}
}

// TestCleanupSparesRewrittenRecord: a cleaner that read a vouched lock
// just before its holder rewrote the record with the same bytes (a new
// file, SetMessage of the same text) and judged it once the vouch had
// moved to the new file must not remove the new file: it is not the file
// it judged. (Found by review: the removal compared bytes only.)
func TestCleanupSparesRewrittenRecord(t *testing.T) {
	p := lockIn(t)
	var l *Lock
	exitedOwner(t, func(pid int) {
		var err error
		if l, err = TryLock(p, WithOwner(pid), WithVouch(), WithMessage("m")); err != nil {
			t.Fatal(err)
		}
	})
	defer l.Unlock()
	h, id, err := readLockBytes(p) // the cleaner reads
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetMessage("m"); err != nil { // the holder rewrites
		t.Fatal(err)
	}
	if j := judge(h); j.State != HolderDead { // the cleaner judges the file it read
		t.Fatalf("the replaced file judged %v, want dead (its vouch moved)", j.State)
	}
	if removed, err := removeIfUnchanged(p, id, h.Raw, "cleaning up"); removed || err != nil {
		t.Errorf("the holder's new record file was removed as the stale one (err %v)", err)
	}
	if h, err := Inspect(p); err != nil || h.State != HolderAlive {
		t.Errorf("after the cleaner: %v, %v; want the lock held and vouched", h.State, err)
	}
}

// TestVouchFileRemoved: a vouch file removed while this process keeps it
// open (an operator's rm -r of /run/lock/nfslock, a cleaner of old files
// in the temporary directory, where the vouch files are when there is no
// /run/lock) is made again by the next vouch through it, which takes the
// vouches held through the removed one again: askers open the name. Before,
// this process vouched through the removed file for the rest of its life,
// where no asker looked, so every lock it vouched for was stale once its
// named process exited.
func TestVouchFileRemoved(t *testing.T) {
	useOwnVouchDir(t)
	first := vouchByteOf(1, 1, []byte("first"))
	var second []byte
	for i := 0; second == nil; i++ {
		if raw := fmt.Appendf(nil, "second %d", i); vouchByteOf(1, 1, raw).file == first.file {
			second = raw
		}
	}
	holders := [2]int{}
	if err := vouch(1, 1, []byte("first"), &holders[0]); err != nil {
		t.Fatal(err)
	}
	defer unvouch(1, 1, []byte("first"), &holders[0])
	if err := os.Remove(first.name()); err != nil {
		t.Fatal(err)
	}
	if err := vouch(1, 1, second, &holders[1]); err != nil {
		t.Fatal(err)
	}
	defer unvouch(1, 1, second, &holders[1])
	if !vouchHeld(vouchByteOf(1, 1, second)) {
		t.Error("the vouch made after its file was removed is not seen")
	}
	if !vouchHeld(first) {
		t.Error("the vouch made before its file was removed is not seen after the next vouch through it")
	}
}

// useOwnVouchDir gives this process, for the test, vouch files of its own
// (the machine's are shared with every other process of this host).
func useOwnVouchDir(t *testing.T) {
	dir := t.TempDir()
	ownVouches.Lock()
	savedDir, savedFiles := vouchDir, ownVouches.files
	vouchDir, ownVouches.files = func() string { return dir }, [vouchFiles]*os.File{}
	ownVouches.Unlock()
	t.Cleanup(func() {
		ownVouches.Lock()
		defer ownVouches.Unlock()
		for _, f := range ownVouches.files {
			if f != nil {
				f.Close()
			}
		}
		vouchDir, ownVouches.files = savedDir, savedFiles
	})
}

// TestVouchFileNotRegular: a FIFO or a symbolic link that another user of
// the host put at a vouch file's name (the directory is world-writable)
// makes a vouch fail and an asker judge the holder alive, at once. Before,
// both blocked in open(2) on a FIFO for as long as nobody opened it for
// writing (the daemon's open of a lock file, and every process judging a
// dead holder of this host), and a link was followed to the file of the
// other user's choosing, which the root daemon then locked.
func TestVouchFileNotRegular(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, name string)
	}{
		{"FIFO", func(t *testing.T, name string) {
			if err := syscall.Mkfifo(name, 0o666); err != nil {
				t.Fatal(err)
			}
			// Whatever blocks in open(2) is let go when the test ends.
			t.Cleanup(func() {
				if w, err := os.OpenFile(name, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
			})
		}},
		{"symbolic link to another user's file", func(t *testing.T, name string) {
			target := filepath.Join(t.TempDir(), "theirs")
			if err := os.WriteFile(target, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, name); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			useOwnVouchDir(t)
			b := vouchByteOf(1, 1, []byte("planted"))
			tc.plant(t, b.name())
			answer := func(what string, f func() bool) bool {
				got := make(chan bool, 1)
				go func() { got <- f() }()
				select {
				case v := <-got:
					return v
				case <-time.After(5 * time.Second):
					t.Fatalf("%s still blocks after 5 s", what)
					return false
				}
			}
			var holder int
			if answer("vouch", func() bool { return vouch(1, 1, []byte("planted"), &holder) == nil }) {
				unvouch(1, 1, []byte("planted"), &holder)
				t.Errorf("vouched through a %s", tc.name)
			}
			if !answer("vouchHeld", func() bool { return vouchHeld(b) }) {
				t.Errorf("a %s at the vouch file's name says that nobody vouches", tc.name)
			}
		})
	}
}
