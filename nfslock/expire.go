//go:build linux

package nfslock

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"time"
)

// Breaking an expired lease (docs/design.md, "Leases", has the argument of
// safety). A contender that finds a lock held reads P.nfs_lock (mtime m:
// the last renewal, by the server's clock), then probes the server's
// clock (s). Only if s - m exceeds the lease is the lock expired. The
// contender then claims the right to remove that version of the lock (its
// inode, mtime and record) by linking a claim file named after the version;
// re-reads P.nfs_lock after the claim, and removes it only if it is still
// that version, before the claim's own deadline. The holder, by then, has
// given the lease up: it stops acting a margin before the server's clock
// can show its lease expired.

// ClaimSuffix ends the names of claim files, P.<16 hex>.<N>.lock-break:
// the right, taken with link(2), to remove one version of P's lock. A
// claim is itself a lease of the lock's duration, never renewed: a claimant
// that dies leaves claim N, which expires, and the next one takes claim N+1.
const ClaimSuffix = ".lock-break"

// maxClaims bounds the chain of claims on one version: each link in it is
// a breaker that died while breaking.
const maxClaims = 64

// lockVersion identifies one version of P.nfs_lock, the same on every
// host: a renewal or a new record makes another. It hashes what the server
// says (the inode number, the mtime, the record), not the device number,
// which each NFS client numbers its own way.
func lockVersion(id fileID, raw []byte) string {
	h := fnv.New64a()
	binary.Write(h, binary.LittleEndian, [2]uint64{id.ino, uint64(id.mtime.UnixNano())})
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil))
}

func claimFile(p, version string, n int) string {
	return p + "." + version + "." + strconv.Itoa(n) + ClaimSuffix
}

// isLeaseHelper reports whether a base name is one of the files leases
// add: a directory's LeaseFile, a token file, or a claim file.
func isLeaseHelper(name string) bool {
	if name == LeaseFile || strings.HasSuffix(name, TokenSuffix) {
		return true
	}
	stem, ok := strings.CutSuffix(name, ClaimSuffix)
	if !ok {
		return false
	}
	i := strings.LastIndexByte(stem, '.')
	if i < 17 || stem[i-17] != '.' {
		return false
	}
	_, err := strconv.Atoi(stem[i+1:])
	return err == nil && isLowerHex(stem[i-16:i], 16)
}

// judgeExpiry decides whether the lock at p, held by h (read with a fresh
// open: id), is an expired lease. If not, it returns when, by the local
// clock, it may be: the server's clock is read only against itself.
func judgeExpiry(p string, h Holder) (expired bool, retryAt time.Time, err error) {
	s, err := serverTime(p)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("nfslock: %s: reading the server's clock to judge the lease: %w", p, err)
	}
	left := h.Lease.Renewed.Add(h.Lease.Duration).Sub(s)
	if left < 0 {
		return true, time.Time{}, nil
	}
	return false, now().Add(left + time.Millisecond), nil
}

// breakIfExpired breaks the lock at p, held by h (read as id), if it is an
// expired lease. It reports whether the caller should try to take the lock
// again at once, and otherwise when, by the local clock, to look again.
func breakIfExpired(p string, h Holder, id fileID) (bool, time.Time, error) {
	expired, retryAt, err := judgeExpiry(p, h)
	if err != nil || !expired {
		return false, retryAt, err
	}
	retry, err := breakExpired(p, h.Raw, id, h.Lease.Duration)
	return retry, now(), err
}

// breakExpired removes the lock version id (record raw) that judgeExpiry
// found expired, unless it changed since. It reports whether the caller
// should try to take the lock again at once.
func breakExpired(p string, raw []byte, id fileID, dur time.Duration) (bool, error) {
	fl, err := openFlocked(p)
	if errors.Is(err, ErrNotLocked) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer fl.Close()
	if !fl.id.equal(id) || !bytes.Equal(fl.Raw, raw) {
		return true, nil // renewed or replaced: judge it again
	}
	removed, changed, err := claimAndRemove(p, fl, dur)
	return removed || changed, err
}

// claimAndRemove removes the lock version fl (opened and flocked) under a
// claim on it; see the file comment. It reports whether it removed it, and
// whether the version had changed meanwhile; neither, when another
// breaker's claim is alive (the caller waits).
func claimAndRemove(p string, fl *flockedLock, dur time.Duration) (removed, changed bool, err error) {
	version := lockVersion(fl.id, fl.Raw)
	n, deadline, err := claim(p, version, dur)
	if err != nil || n == 0 {
		return false, false, err
	}
	// Re-read after the claim: until this claim was taken, an earlier
	// claimant may have removed the version.
	f, fi, err := openLockFile(p)
	current := false
	if err == nil {
		data, rerr := readRecordBytes(f, fi.Size())
		f.Close()
		current = rerr == nil && fileIDOf(fi).equal(fl.id) && bytes.Equal(data, fl.Raw)
	} else if !errors.Is(err, ErrNotLocked) {
		return false, false, err // leave the claim: it expires
	}
	if current && !now().Before(deadline) {
		return false, false, nil // too slow to act on the claim: leave it to expire
	}
	if current {
		if err := removeLockFiles(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, false, fmt.Errorf("nfslock: %s: removing a lock: %w", p, err)
		}
	}
	// The version is gone: no claimant of it can act any more, so its
	// claims are garbage.
	for i := n; i >= 1; i-- {
		os.Remove(claimFile(p, version, i))
	}
	return current, !current, nil
}

// claim takes the first free claim on version, after checking that each
// one before it has expired by the server's clock. It returns the claim's
// number and the local deadline for acting on it, or 0 when a live claim
// of another breaker stands.
func claim(p, version string, dur time.Duration) (int, time.Time, error) {
	host, _ := hostname()
	text := fmt.Appendf(nil, "breaking an expired lease: host %s pid %d\n", host, os.Getpid())
	for n, vanished := 1, 0; n <= maxClaims; n++ {
		name := claimFile(p, version, n)
		start := now()
		a, err := writeAttempt(p, text)
		if err != nil {
			return 0, time.Time{}, pathError(p, err)
		}
		linked, err := a.linkTo(name)
		os.Remove(a.name)
		if err != nil {
			return 0, time.Time{}, pathError(p, err)
		}
		if linked {
			return n, start.Add(dur - leaseMargin(dur)), nil
		}
		f, fi, err := openPlain(name)
		if errors.Is(err, os.ErrNotExist) && vanished < 3 {
			vanished++ // its claimant finished: try the same number again
			n--
			continue
		}
		if err != nil {
			return 0, time.Time{}, pathError(p, err)
		}
		f.Close()
		s, err := serverTime(p)
		if err != nil {
			return 0, time.Time{}, pathError(p, err)
		}
		if s.Sub(fi.ModTime()) <= dur {
			return 0, time.Time{}, nil
		}
	}
	return 0, time.Time{}, fmt.Errorf("nfslock: %s: %d breakers of this lock died while breaking it: %w", p, maxClaims, ErrLocked)
}

// openPlain opens a file for reading with fresh attributes (on NFS, open
// revalidates them), and returns them.
func openPlain(name string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
