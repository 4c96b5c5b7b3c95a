//go:build linux

package fusefs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	if err != nil || m.fstype != fsType {
		return "", false, err
	}
	rel, err := filepath.Rel(m.mountpoint, filepath.Join(dir, filepath.Base(p)))
	if err != nil || rel == "." {
		return "", true, fmt.Errorf("%s is the root of the nfslockfs mount of %s, not a lock in it", p, m.source)
	}
	return filepath.Join(m.source, m.root, rel), true, nil
}

// A mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	root, mountpoint, fstype, source string
}

// readMounts returns this process's mounts in /proc/self/mountinfo's order
// (a mount stacked on another comes after it).
func readMounts() ([]mountEntry, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var mounts []mountEntry
	for line := range strings.Lines(string(data)) {
		// id parent dev ROOT MOUNTPOINT options [optional...] - TYPE SOURCE superoptions
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if sep < 6 || sep+2 >= len(fields) {
			continue
		}
		mounts = append(mounts, mountEntry{
			root:       unescapeMountinfo(fields[3]),
			mountpoint: unescapeMountinfo(fields[4]),
			fstype:     fields[sep+1],
			source:     unescapeMountinfo(fields[sep+2]),
		})
	}
	return mounts, nil
}

// mountOf returns the mount that path lookups of dir (absolute, symbolic
// links resolved) reach: the topmost of those at the longest mountpoint
// that is dir or a parent of it.
func mountOf(dir string) (mountEntry, error) {
	mounts, err := readMounts()
	if err != nil {
		return mountEntry{}, err
	}
	var best mountEntry
	for _, m := range mounts {
		inside := m.mountpoint == "/" || dir == m.mountpoint || strings.HasPrefix(dir, m.mountpoint+"/")
		if inside && len(m.mountpoint) >= len(best.mountpoint) {
			best = m
		}
	}
	return best, nil
}
