//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

const statusHelp = `Usage: nfslock status [--json] PATH...

Show who holds each lock PATH: host, pid, when the holder process started,
since when it holds the lock, its message (as reads of the lock through an
nfslockfs mount show them), and its state:
  alive     a running process of this host
  dead      a process of this host that is gone: the lock is stale, and the
            next acquire on this host removes it
  remote    a process of another host, whose life cannot be judged from here
  free      nobody holds the lock
  shared    held by shared holders (flock -s, LOCK_SH, F_RDLCK), each shown
  corrupt   the record does not parse; its bytes are shown as raw
In a lease directory (see 'nfslock --help') it shows as well the holder's
fencing token, its lease, when it was last renewed, and how long ago that
was and when the lease expires, both by the clock of the server that
stores the lock (reading it needs write permission on the directory).
Backslashes, newlines and other unprintable bytes in a value are escaped as
in a Go string. Blocks are separated by blank lines. With --json, each lock
is one JSON object on its own line.

Exit status: 0, or 1 if a lock could not be read (the others are shown).
`

func statusMain(args []string) int {
	fs := newFlagSet("status")
	asJSON := fs.Bool("json", false, "one JSON object per lock")
	paths, err := parseSubcommand(fs, "nfslock status", args)
	if err == nil && len(paths) == 0 {
		err = usageErrorf("nfslock status", "missing PATH")
	}
	if err == nil {
		err = checkLockPaths("nfslock status", paths...)
	}
	if err != nil {
		return reportParseError(err, statusHelp)
	}
	code, shown := 0, 0
	for _, path := range paths {
		v, err := inspect(path)
		if err != nil {
			printError(err)
			code = 1
			continue
		}
		write := v.writeJSON
		if !*asJSON {
			if shown > 0 {
				fmt.Println()
			}
			write = v.writeText
		}
		if err := write(os.Stdout); err != nil {
			printError(err)
			return 1
		}
		shown++
	}
	return code
}

// inspect reads the lock at path for status.
func inspect(path string) (lockView, error) {
	p, err := lockPath(path)
	if err != nil {
		return lockView{}, err
	}
	h, err := nfslock.Inspect(p)
	switch {
	case errors.Is(err, nfslock.ErrNotLocked):
		if err := checkLockDir(p); err != nil {
			return lockView{}, err
		}
		shared, err := nfslock.Readers(p)
		return lockView{path: path, shared: shared}, err
	case err != nil:
		return lockView{}, err
	}
	v := lockView{path: path, holder: &h}
	if h.Lease != nil {
		// Without the server's time the rest is still worth showing.
		if v.serverNow, err = nfslock.ServerTime(filepath.Dir(p)); err != nil {
			printError(err)
		}
	}
	return v, nil
}
