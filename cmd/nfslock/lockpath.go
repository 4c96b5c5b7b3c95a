//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
