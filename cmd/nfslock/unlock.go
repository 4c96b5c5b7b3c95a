//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

const unlockHelp = `Usage: nfslock unlock PATH

Release the lock PATH if Jane Street Core's unlock would: the holder is a
process of this host that is no longer running (or nfslock unlock itself).
A lock held by a running process or by another host is left alone; to
remove it whatever holds it, see 'nfslock break --help'.

Exit status: 0 if the lock is released or was free, 1 if it is left alone
or an error occurred, 2 for usage errors.
`

func unlockMain(args []string) int {
	fs := newFlagSet("unlock")
	paths, err := parseSubcommand(fs, "nfslock unlock", args)
	if err == nil && len(paths) != 1 {
		err = usageErrorf("nfslock unlock", "needs exactly one PATH, got %d", len(paths))
	}
	if err == nil {
		err = checkLockPaths("nfslock unlock", paths...)
	}
	if err != nil {
		return reportParseError(err, unlockHelp)
	}
	p, err := lockPath(paths[0])
	if err == nil {
		err = nfslock.Unlock(p)
	}
	if errors.Is(err, nfslock.ErrNotLocked) {
		if dirErr := checkLockDir(p); dirErr != nil {
			err = dirErr
		}
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, nfslock.ErrNotLocked):
		fmt.Fprintf(os.Stderr, "nfslock: %s is not locked; nothing to do\n", paths[0])
		return 0
	}
	printError(err)
	return 1
}
