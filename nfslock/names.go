//go:build linux

package nfslock

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
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
// rather than a lock name: P.nfs_lock, an attempt file, the files of
// leases (LeaseFile, TokenSuffix, ClaimSuffix), the directory of a lock's
// shared holders (ReadersDirSuffix) or a reader file in it (ReaderSuffix),
// or an NFS client's silly-renamed file (.nfsXXXX...).
func IsHelperFile(name string) bool {
	if strings.HasSuffix(name, LockSuffix) || strings.HasSuffix(name, ReadersDirSuffix) || isLeaseHelper(name) || isReaderFile(name) {
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

// ErrInvalidPath: the path cannot be a lock (see NormalizePath). Errors
// matching it match syscall.EINVAL too.
var ErrInvalidPath = errors.New("not a lock path")

// NormalizePath returns the one spelling of the lock path p that every
// function of this package uses: absolute (relative to the working
// directory at the call) and cleaned, a trailing "/" dropped, so that d,
// d/, ./d and /abs/d are one lock, and a Lock keeps naming its files
// whatever the working directory becomes. A path that names no file of its
// own ("", "/", ".", "..", "d/..") or whose last element is a helper file
// (see IsHelperFile) would alias another lock's files: it gives an error
// matching ErrInvalidPath and syscall.EINVAL.
func NormalizePath(p string) (string, error) {
	if p == "" {
		return "", invalidPath(p, "the path is empty")
	}
	switch base := filepath.Base(filepath.Clean(p)); {
	case base == "/" || base == "." || base == "..":
		return "", invalidPath(p, "it is / or ends in . or .., which name a directory, not a lock file of its own")
	case IsHelperFile(base):
		return "", invalidPath(p, "%s is the name of one of the lock protocol's own files (*%s, attempt files, NFS .nfsXXXX files)", base, LockSuffix)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("nfslock: %s: making the path absolute: %w", p, err)
	}
	return abs, nil
}

func invalidPath(p, format string, args ...any) error {
	return &invalidPathError{path: p, reason: fmt.Sprintf(format, args...)}
}

// An invalidPathError matches both ErrInvalidPath and syscall.EINVAL.
type invalidPathError struct{ path, reason string }

func (e *invalidPathError) Error() string {
	return fmt.Sprintf("nfslock: %q is not a lock path: %s", e.path, e.reason)
}

func (e *invalidPathError) Is(target error) bool {
	return target == ErrInvalidPath || target == syscall.EINVAL
}
