//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

const breakHelp = `Usage: nfslock break --force PATH

Remove the lock PATH whatever holds it, and show what was removed. This is
the operator's override for a lock whose host died or whose record is
corrupt: if the holder is in fact still running, it and the next holder
will both believe they hold the lock. Check with 'nfslock status PATH'
first. Without --force nothing is removed.

Exit status: 0 if the lock was removed or was free, 1 if it could not be
removed (it changed hands meanwhile, or an error occurred), 2 for usage
errors, --force missing included.
`

func breakMain(args []string) int {
	fs := newFlagSet("break")
	force := fs.Bool("force", false, "really remove the lock")
	paths, err := parseSubcommand(fs, "nfslock break", args)
	switch {
	case err != nil:
	case len(paths) != 1:
		err = usageErrorf("nfslock break", "needs exactly one PATH, got %d", len(paths))
	case !*force:
		err = usageErrorf("nfslock break", "refusing without --force: it removes the lock even from a live holder; check 'nfslock status %s' first", paths[0])
	default:
		err = checkLockPaths("nfslock break", paths[0])
	}
	if err != nil {
		return reportParseError(err, breakHelp)
	}
	p, err := lockPath(paths[0])
	var (
		h      nfslock.Holder
		shared []nfslock.Holder
	)
	if err == nil {
		h, err = nfslock.Break(p)
	}
	if errors.Is(err, nfslock.ErrNotLocked) {
		shared, err = nfslock.BreakShared(p)
	}
	if errors.Is(err, nfslock.ErrNotLocked) {
		if dirErr := checkLockDir(p); dirErr != nil {
			err = dirErr
		}
	}
	switch {
	case errors.Is(err, nfslock.ErrNotLocked):
		fmt.Fprintf(os.Stderr, "nfslock: %s is not locked; nothing to remove\n", paths[0])
		return 0
	case err != nil:
		printError(err)
		return 1
	}
	fmt.Println("removed:")
	v := lockView{path: paths[0], holder: &h}
	if shared != nil {
		v = lockView{path: paths[0], shared: shared}
	}
	if err := v.writeText(os.Stdout); err != nil {
		printError(err)
		return 1
	}
	return 0
}
