//go:build linux

package mountinfo

import (
	"fmt"
	"path/filepath"
	"strings"
)

// BackingPath tells whether the lock path p (absolute and clean, as
// nfslock.NormalizePath makes it) is under an nfslockfs mount, as this
// process's mount table shows it, and if so returns the path in the
// backing directory of the lock that p shows: the lock that an open of p
// takes and that reading p describes, so that a program acting on it with
// package nfslock acts on that lock. A p whose directory does not exist is
// not under a mount (the caller reports the missing directory). The mount's
// root itself is no lock: an error.
func BackingPath(p string) (backing string, underMount bool, err error) {
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return "", false, nil
	}
	m, err := mountOf(dir)
	if err != nil || m.FSType != NFSLockFSType {
		return "", false, err
	}
	rel, err := filepath.Rel(m.Mountpoint, filepath.Join(dir, filepath.Base(p)))
	if err != nil || rel == "." {
		return "", true, fmt.Errorf("%s is the root of the nfslockfs mount of %s, not a lock in it", p, m.Source)
	}
	return filepath.Join(m.Source, m.Root, rel), true, nil
}

// mountOf returns the mount that path lookups of dir (absolute, symbolic
// links resolved) reach: the topmost of those at the longest mountpoint
// that is dir or a parent of it.
func mountOf(dir string) (Mount, error) {
	mounts, err := Read()
	if err != nil {
		return Mount{}, err
	}
	var best Mount
	for _, m := range mounts {
		inside := m.Mountpoint == "/" || dir == m.Mountpoint || strings.HasPrefix(dir, m.Mountpoint+"/")
		if inside && len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	return best, nil
}
