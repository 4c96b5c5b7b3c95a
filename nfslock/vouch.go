//go:build linux

package nfslock

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// A process that holds a lock in another process's name (WithOwner) may
// rightly hold it after that process has exited. The FUSE daemon takes a
// lock for the process that opens a file; when that process exits while a
// child it forked keeps the file open, the daemon renames the record to the
// child. Between the exit and the rename the record names a dead process of
// this host, and any other process of the host would clean the lock up as
// stale and take it while the child still holds it: a false exclusion, seen
// once in the cluster chaos when flock(1) was killed while its command ran.
//
// A vouch closes that window. While the lock is held, the process that holds
// it keeps a read lock (an open file description lock, fcntl(2)
// F_OFD_SETLK) on one byte of a host-local vouch file; the byte and the
// file are chosen by a hash of the lock file's device and inode and of its
// record. A process of this package that finds the record's process of this
// host dead asks whether anyone holds that byte (F_OFD_GETLK through a
// description of its own), and if so, the holder counts as alive. The
// kernel drops the vouch when the vouching process ends, however it ends:
// there is no vouch of a dead process to tell from a live one, no process
// id to outlive its process, and no file made or removed per lock. (The
// first vouches were symbolic links, made and removed every cycle: with
// /run on a disk, each cycle through the FUSE mount cost up to several
// hundred µs more than on tmpfs; see docs/design.md, "Vouches".) The vouch
// files live beside the host locks (see hostLockDir), on the host's own
// filesystem: vouching costs no round trip to the NFS server, and only this
// host's processes, the only ones that judge this host's holders, need to
// see it. A vouch outlives the lock files it vouches for: it is taken after
// the link and dropped after the release's removal.
//
// Limits: processes that are not of this package (Core) do not look for
// vouches, nor do versions of it before these files. Two locks whose hashes
// meet on one byte vouch for each other: a dead holder's lock then stays
// held while the other lock is, never the reverse (2^-64 per pair). A vouch
// file that a process can open neither to vouch nor to ask makes it fail to
// vouch (the lock is not taken), or judge the holder alive (the lock must
// be broken by hand): never stale on a guess. A vouch file removed while
// this process vouches through it hides those vouches until the process
// vouches through it again (vouchFile): remove them only with no holder
// running.

// vouchFiles is how many vouch files there are. The kernel scans the
// locks of one file linearly on each lock request: spreading them keeps a
// daemon holding ten thousand locks at about a hundred and fifty per file.
const vouchFiles = 64

// vouchDir is where the vouch files live, created world-writable and
// sticky as the host locks' directory is.
var vouchDir = sync.OnceValue(func() string {
	dir := filepath.Join(hostLockDir(), "vouch")
	if os.Mkdir(dir, 0o777) == nil {
		os.Chmod(dir, 0o777|os.ModeSticky)
	}
	return dir
})

// A vouchByte is one byte of one vouch file.
type vouchByte struct {
	file   int
	offset int64
}

// vouchByteOf is the byte that vouches for the lock file dev, ino holding
// the record raw. The record's hash makes a vouch specific to one lock: a
// vouch that outlives its lock (whose holder has yet to learn that it was
// broken) vouches for no later lock file that gets the same inode number.
func vouchByteOf(dev, ino uint64, raw []byte) vouchByte {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d:%d:", dev, ino)
	h.Write(raw)
	sum := h.Sum64()
	return vouchByte{file: int(sum % vouchFiles), offset: int64(sum >> 2)}
}

func (b vouchByte) name() string { return filepath.Join(vouchDir(), fmt.Sprintf("%02d", b.file)) }

// lock applies an OFD lock of type typ (F_RDLCK, F_UNLCK, or F_WRLCK to
// ask with F_OFD_GETLK) to b through f, by fcntl(2) command cmd, and
// returns the lock as the kernel gave it back.
func (b vouchByte) lock(f *os.File, cmd int, typ int16) (unix.Flock_t, error) {
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: b.offset, Len: 1}
	for {
		err := unix.FcntlFlock(f.Fd(), cmd, &lk)
		if err != unix.EINTR {
			return lk, err
		}
	}
}

// ownVouches maps each vouch this process made to the holder it made it
// for (a *Lock or a *SharedLock), so that one holder's end never drops
// another's vouch of the same byte; files are this process's descriptions
// of the vouch files, opened once each and kept open for its life (closing
// one would drop every vouch made through it), unless removed (vouchFile).
var ownVouches = struct {
	sync.Mutex
	m     map[vouchByte]any
	files [vouchFiles]*os.File
}{m: make(map[vouchByte]any)}

// openVouchFile opens a vouch file for reading, creating it readable by
// every user if it is missing (vouching needs only a read lock, and the
// processes that ask may be any user's).
func openVouchFile(name string) (*os.File, error) {
	f, err := openBucket(name)
	if err == nil {
		if fi, serr := f.Stat(); serr == nil && fi.Mode().Perm()&0o444 != 0o444 {
			f.Chmod(0o444) // ours, made under a strict umask; another user's stays as it is
		}
	}
	return f, err
}

// vouch makes this process answer, for holder, for the lock file dev, ino
// holding raw, to the other processes of this host, until unvouch or its
// exit. Its errors are the host filesystem's and fcntl(2)'s.
func vouch(dev, ino uint64, raw []byte, holder any) error {
	b := vouchByteOf(dev, ino, raw)
	ownVouches.Lock()
	defer ownVouches.Unlock()
	f, err := vouchFile(b.file)
	if err != nil {
		return err
	}
	// A byte this process locked already (for a holder whose lock was
	// broken) stays locked, and passes to holder.
	if _, err := b.lock(f, unix.F_OFD_SETLK, unix.F_RDLCK); err != nil {
		return &os.PathError{Op: "fcntl F_OFD_SETLK", Path: b.name(), Err: err}
	}
	ownVouches.m[b] = holder
	return nil
}

// vouchFile returns this process's description of vouch file i, opening
// it on first use, and again once the file it opened has no name left
// (removed: by an operator, or by a cleaner of old files where the vouch
// files are in the temporary directory, see hostLockDir). Askers open the
// name, so the vouches held through the removed file are taken again
// through the new one. Called with ownVouches held; its errors are
// openVouchFile's and fcntl(2)'s.
func vouchFile(i int) (*os.File, error) {
	f := ownVouches.files[i]
	if f != nil {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Nlink > 0 {
			return f, nil
		}
	}
	name := vouchByte{file: i}.name()
	nf, err := openVouchFile(name)
	if err != nil {
		return nil, err
	}
	for b := range ownVouches.m {
		if b.file != i {
			continue
		}
		if _, err := b.lock(nf, unix.F_OFD_SETLK, unix.F_RDLCK); err != nil {
			nf.Close()
			return nil, &os.PathError{Op: "fcntl F_OFD_SETLK", Path: name, Err: err}
		}
	}
	if f != nil {
		f.Close()
	}
	ownVouches.files[i] = nf
	return nf, nil
}

// unvouch ends holder's vouch for the lock file dev, ino holding raw, if
// that vouch is still holder's.
func unvouch(dev, ino uint64, raw []byte, holder any) {
	b := vouchByteOf(dev, ino, raw)
	ownVouches.Lock()
	defer ownVouches.Unlock()
	if ownVouches.m[b] == holder {
		delete(ownVouches.m, b)
		b.lock(ownVouches.files[b.file], unix.F_OFD_SETLK, unix.F_UNLCK)
	}
}

// EndVouch ends this process's vouch for the lock (WithVouch) without
// releasing it: from then on its record alone says whether it is held, as
// for any lock whose holder is another process. A server that stops
// serving its locks while their holders still run calls it, so that the
// locks become stale when those holders exit, whether or not this process
// lives on. It does nothing to a lock this process does not vouch for.
func (l *Lock) EndVouch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	endVouch(&l.vouched, l.dev, l.ino, l.data, l)
}

// EndVouch is Lock.EndVouch for a shared hold.
func (s *SharedLock) EndVouch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	endVouch(&s.vouched, s.dev, s.ino, s.data, s)
}

// endVouch ends holder's vouch for its lock file dev, ino holding raw if
// *vouched says it has one, and clears *vouched: the end of a holder, or
// of its vouching. Called with the holder's mutex held.
func endVouch(vouched *bool, dev, ino uint64, raw []byte, holder any) {
	if *vouched {
		unvouch(dev, ino, raw, holder)
		*vouched = false
	}
}

// vouched reports whether a live process of this host vouches for the lock
// file fi holding raw: whether any open file description of a vouch file
// holds its byte, this process's own among them (the question is asked
// through a description of its own, which every other conflicts with). A
// vouch file that cannot be read answers yes (see the limits above).
func vouched(fi os.FileInfo, raw []byte) bool {
	id := fileIDOf(fi)
	return vouchHeld(vouchByteOf(id.dev, id.ino, raw))
}

// vouchHeld reports whether any open file description holds b.
func vouchHeld(b vouchByte) bool {
	f, err := openHostFile(b.name())
	if errors.Is(err, os.ErrNotExist) {
		return false // never made: nobody ever vouched through it
	}
	if err != nil {
		return true
	}
	defer f.Close()
	lk, err := b.lock(f, unix.F_OFD_GETLK, unix.F_WRLCK)
	return err != nil || lk.Type != unix.F_UNLCK
}
