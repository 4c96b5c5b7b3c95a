//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nfslockfs/nfslockfs/internal/mountinfo"
	"github.com/nfslockfs/nfslockfs/nfslock"
)

// checkLockPaths refuses, as a usage error of cmd, a PATH that cannot be a
// lock: empty, /, . or .., or the name of one of the lock protocol's own
// files (x.nfs_lock as a lock name would take over lock x's record).
func checkLockPaths(cmd string, paths ...string) error {
	for _, p := range paths {
		if _, err := nfslock.NormalizePath(p); err != nil {
			return usageErrorf(cmd, "%s", strings.TrimPrefix(err.Error(), "nfslock: "))
		}
	}
	return nil
}

// lockPath returns the path the library is to act on for PATH: PATH made
// absolute, or, for a PATH under an nfslockfs mount, the lock in the
// mount's backing directory that PATH shows there (what cat shows, what an
// open through the mount takes), so that status, unlock, break and taking
// the lock agree with the mount.
func lockPath(path string) (string, error) {
	abs, err := nfslock.NormalizePath(path)
	if err != nil {
		return "", err
	}
	backing, underMount, err := mountinfo.BackingPath(abs)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w", path, err)
	case underMount:
		return backing, nil
	}
	return abs, nil
}

// checkLockDir tells a free lock from a mistyped path: the library calls a
// lock free whenever PATH.nfs_lock does not exist, missing directory
// included, and an operator who is told "free" for a typo is misled. The
// error names the directory, as the library's do.
func checkLockDir(path string) error {
	abs, err := nfslock.NormalizePath(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(abs)
	if _, err := os.Stat(dir); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s: directory %s: %w", path, dir, err)
	}
	return nil
}
