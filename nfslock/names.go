package nfslock

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
)

const (
	// LockSuffix names the lock file: the lock on P is held iff P.nfs_lock exists.
	LockSuffix = ".nfs_lock"
	// AttemptSuffix ends the names of attempt files, P.<32 hex>.lock-attempt,
	// in which a record is written before it is linked to P.nfs_lock.
	AttemptSuffix = ".lock-attempt"

	nameMax = 255 // NAME_MAX of Linux filesystems, NFS included
	// attemptExtra is what an attempt file's name adds to P's last element.
	attemptExtra = 1 + 32 + len(AttemptSuffix)
	// MaxNameLen is the longest last path element a lock can have.
	MaxNameLen = nameMax - attemptExtra
)

// lockFile returns P.nfs_lock for the lock path p.
func lockFile(p string) string { return p + LockSuffix }

// attemptFile returns a fresh attempt file name for the lock path p. The
// name follows Core v2's pattern, so that both sides clean up each other's
// leftovers.
func attemptFile(p string) string {
	var b [16]byte
	rand.Read(b[:])
	return p + "." + hex.EncodeToString(b[:]) + AttemptSuffix
}

// isAttemptFileOf reports whether name is an attempt file of the lock whose
// last path element is base.
func isAttemptFileOf(name, base string) bool {
	rest, ok := strings.CutPrefix(name, base+".")
	if !ok {
		return false
	}
	hexPart, ok := strings.CutSuffix(rest, AttemptSuffix)
	return ok && isLowerHex(hexPart, 32)
}

// IsHelperFile reports whether the base name is one of the protocol's files
// rather than a lock name: P.nfs_lock, an attempt file, or an NFS client's
// silly-renamed file (.nfsXXXX...).
func IsHelperFile(name string) bool {
	if strings.HasSuffix(name, LockSuffix) {
		return true
	}
	if stem, ok := strings.CutSuffix(name, AttemptSuffix); ok && len(stem) > 33 && stem[len(stem)-33] == '.' {
		return isLowerHex(stem[len(stem)-32:], 32)
	}
	if hexPart, ok := strings.CutPrefix(name, ".nfs"); ok && len(hexPart) >= 8 {
		return isHex(hexPart)
	}
	return false
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	return strings.Trim(strings.ToLower(s), "0123456789abcdef") == ""
}

// checkName refuses a lock path whose last element leaves no room for the
// attempt-file suffix, before any file is touched.
func checkName(p string) error {
	if base := filepath.Base(p); len(base) > MaxNameLen {
		return fmt.Errorf("nfslock: %s: name is %d bytes, but the lock files add %d bytes to it and the limit is %d, so a lock name can have at most %d bytes: %w",
			p, len(base), attemptExtra, nameMax, MaxNameLen, syscall.ENAMETOOLONG)
	}
	return nil
}
